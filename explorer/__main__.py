"""``python -m explorer``: the same as the ``rnn-explorer`` command."""

from .cli import main

raise SystemExit(main())
