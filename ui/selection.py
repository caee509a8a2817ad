"""Selection: which hidden unit (and which step) the views single out; shared by all panels."""

from __future__ import annotations

from PyQt5 import QtCore


class Selection(QtCore.QObject):
    """The selected hidden unit, and the step the views look at (None: follow the cycle)."""

    changed = QtCore.pyqtSignal()

    def __init__(self, unit=0, parent=None):
        super().__init__(parent)
        self.unit = unit
        self.step = None

    def select_unit(self, unit):
        if unit != self.unit:
            self.unit = int(unit)
            self.changed.emit()

    def select_step(self, step):
        """Look at step ``step`` (None: the step the cycle is at)."""
        if step != self.step:
            self.step = None if step is None else int(step)
            self.changed.emit()

    def step_for(self, ctl):
        """The step to show: the selected one, else the one just processed (else the next)."""
        if self.step is not None and 0 <= self.step < ctl.T:
            return self.step
        if ctl.current is not None:
            return ctl.current
        return ctl.t if ctl.t is not None else 0

    def clamp(self, hidden_size):
        """Keep the unit valid after the model changed size."""
        if self.unit >= hidden_size:
            self.unit = 0
