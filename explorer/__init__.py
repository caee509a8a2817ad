"""RNN Explorer's engine: recurrent networks in NumPy, stepped one time step at a time (no Qt)."""

__version__ = "0.1.0"

from .controller import Controller, Event, TrainProgress, TrainResult
from .data import Vocabulary, batches, corpus_names, corpus_text, load_text, windows
from .gradcheck import gradcheck
from .io import load_model, save_model
from .network import BPTT, Network, State
from .optim import (
    OPTIMIZERS,
    HalveOnLossIncrease,
    clip_by_global_norm,
    clip_by_value,
    make_optimizer,
)
from .sampling import sample

__all__ = [
    "BPTT", "OPTIMIZERS", "Controller", "Event", "HalveOnLossIncrease", "Network", "State",
    "TrainProgress", "TrainResult", "Vocabulary", "batches", "clip_by_global_norm",
    "clip_by_value", "corpus_names", "corpus_text", "gradcheck", "load_model", "load_text",
    "make_optimizer", "sample", "save_model", "windows",
]
