"""File ▸ Export: save a panel or one of its plots as PNG, SVG or CSV, written atomically."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pyqtgraph as pg
from PyQt5 import QtCore, QtWidgets
from pyqtgraph.exporters import CSVExporter, ImageExporter, SVGExporter

PLOT_SUFFIXES = (".png", ".svg", ".csv")
FORMATS = {".png": "PNG image (*.png)", ".svg": "SVG vector drawing (*.svg)",
           ".csv": "CSV data of the curves (*.csv)"}


def _target(path, allowed, what):
    """``path`` as a Path whose suffix is one of ``allowed`` and whose folder exists."""
    try:
        path = Path(path)
    except TypeError:
        raise ValueError(f"path must be a file path, got {path!r}") from None
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise ValueError(f"path must end in {', '.join(allowed)} to save {what}; "
                         f"got {path.name!r}")
    if not path.parent.is_dir():
        raise ValueError(f"path {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    return path


def _write_atomically(path, write):
    """Call ``write(temporary path)``, then move the result onto ``path`` in one step.

    The temporary file sits in the same folder (so the move is a rename, never a copy) and
    has the same suffix (the exporters pick the format from it). A failed export leaves any
    earlier file at ``path`` untouched."""
    tmp = path.with_name(f".{path.stem}-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        result = write(tmp)
        if result is False or not tmp.is_file() or tmp.stat().st_size == 0:
            raise OSError(f"could not write {str(path)!r} (nothing was written)")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def export_widget_png(widget, path):
    """Save what ``widget`` shows (a whole panel) as a PNG file; returns the path."""
    path = _target(path, (".png",), "a panel (as a picture)")
    return _write_atomically(path, lambda tmp: widget.grab().save(str(tmp), "PNG"))


def _has_curves(item):
    return isinstance(item, pg.PlotItem) and any(
        curve.getData()[0] is not None and len(curve.getData()[0]) > 0
        for curve in item.listDataItems())


def export_plot(item, path, width=None):
    """Save a pyqtgraph PlotItem (or GraphicsScene) by the suffix of ``path``: .png (an
    image, ``width`` pixels wide if given), .svg (a vector drawing) or .csv (the curves' x, y
    data; PlotItems with curves only). Returns the path; ValueError for anything else."""
    path = _target(path, PLOT_SUFFIXES, "a plot")
    suffix = path.suffix.lower()
    if suffix == ".png":
        exporter = ImageExporter(item)
        if width is not None:
            exporter.parameters()["width"] = int(width)
    elif suffix == ".svg":
        exporter = SVGExporter(item)
    else:
        if not _has_curves(item):
            raise ValueError("path ends in .csv, but this plot has no curves whose data could "
                             "be written (heatmaps and bar charts have none); save it as .png "
                             "or .svg instead")
        exporter = CSVExporter(item)
    return _write_atomically(path, lambda tmp: exporter.export(str(tmp)))


def _slug(text):
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-") or "plot"


class ExportDialog(QtWidgets.QDialog):
    """Pick a panel or one of its plots, a format and a file; Save writes it.

    ``panels``: objects with ``title``, ``name`` and ``export_items()`` (label, PlotItem)
    pairs, such as the window's panels. Every panel can also be saved whole, as a PNG.
    """

    def __init__(self, panels, parent=None, folder=None):
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.folder = Path(folder) if folder else Path.home()
        self.entries = []           # (shown text, panel, PlotItem or None for the whole panel)
        for panel in panels:
            title = getattr(panel, "title", type(panel).__name__)
            for label, item in panel.export_items():
                self.entries.append((f"{title} — {label}", panel, item))
            self.entries.append((f"{title} — whole panel (PNG)", panel, None))

        self.list = QtWidgets.QListWidget()
        self.list.addItems([text for text, _, _ in self.entries])
        self.list.setToolTip("What to save: one plot of a panel, or the whole panel as a "
                             "picture.")
        self.list.currentRowChanged.connect(self._chosen)
        self.format = QtWidgets.QComboBox()
        self.format.setToolTip("PNG: a picture for slides; SVG: a drawing that scales; "
                               "CSV: the numbers of the curves.")
        self.format.currentIndexChanged.connect(self._format_changed)
        self.path = QtWidgets.QLineEdit()
        self.path.setToolTip("The file to write (an existing file is replaced).")
        browse = QtWidgets.QPushButton("Choose file…")
        browse.clicked.connect(self.browse)
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.save_button = QtWidgets.QPushButton("Save")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.save)
        close = QtWidgets.QPushButton("Close")
        close.clicked.connect(self.reject)

        form = QtWidgets.QFormLayout()
        form.addRow("Format", self.format)
        file_row = QtWidgets.QHBoxLayout()
        file_row.addWidget(self.path, 1)
        file_row.addWidget(browse)
        form.addRow("File", file_row)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.save_button)
        buttons.addWidget(close)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(QtWidgets.QLabel("Save which picture or data?"))
        layout.addWidget(self.list, 1)
        layout.addLayout(form)
        layout.addLayout(buttons)
        self.resize(560, 420)
        if self.entries:
            self.list.setCurrentRow(0)
        else:
            self.save_button.setEnabled(False)
            self._say("No panel has anything to export.", error=True)

    # ----------------------------------------------------------------- choosing

    def select(self, row):
        self.list.setCurrentRow(row)

    def current(self):
        row = self.list.currentRow()
        return self.entries[row] if 0 <= row < len(self.entries) else None

    def _suffixes(self, item):
        if item is None:
            return (".png",)
        return PLOT_SUFFIXES if _has_curves(item) else (".png", ".svg")

    def _chosen(self, row):
        if not 0 <= row < len(self.entries):
            return
        text, panel, item = self.entries[row]
        self.format.blockSignals(True)
        self.format.clear()
        for suffix in self._suffixes(item):
            self.format.addItem(FORMATS[suffix], suffix)
        self.format.blockSignals(False)
        label = "panel" if item is None else text.split(" — ", 1)[-1]
        name = f"{getattr(panel, 'name', 'panel')}-{_slug(label)}"
        self.path.setText(str(self.folder / f"{name}{self.format.currentData()}"))
        self._say("")

    def _format_changed(self):
        suffix = self.format.currentData()
        text = self.path.text().strip()
        if suffix and text:
            self.path.setText(str(Path(text).with_suffix(suffix)))

    def browse(self):
        entry = self.current()
        if entry is None:
            return
        filters = ";;".join(FORMATS[s] for s in self._suffixes(entry[2]))
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export to", self.path.text(),
                                                        filters)
        if path:
            self.path.setText(path)

    # ----------------------------------------------------------------- saving

    def save(self, path=None):
        """Write the chosen entry to ``path`` (default: the File field); the path or None."""
        entry = self.current()
        if entry is None:
            return None
        _, panel, item = entry
        path = path or self.path.text().strip()
        if not path:
            self._say("Choose a file to save to.", error=True)
            return None
        try:
            if item is None:
                written = export_widget_png(panel, path)
            else:
                written = export_plot(item, path)
        except (ValueError, OSError) as error:
            self._say(str(error), error=True)
            return None
        self.folder = written.parent
        self._say(f"Saved {written}")
        return written

    def _say(self, message, error=False):
        self.status.setStyleSheet("color: #c00000;" if error else "color: #1a7a1a;")
        self.status.setText(("⚠ " if error and message else "") + message)
