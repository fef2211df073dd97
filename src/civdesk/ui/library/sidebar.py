"""The Models page's sidebar: "All", one row per model type with its count, then the
Duplicates, Updates, Offline and Removed views."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QWidget

from civdesk.core.library.repository import UNKNOWN_TYPE
from civdesk.core.units import plural
from civdesk.ui.library.rows import LibrarySnapshot, Show, type_label

SIDEBAR_KIND = Qt.ItemDataRole.UserRole + 1  # ("type", name) | ("show", Show)
SidebarKind = tuple[str, Any]  # ("type", "LORA" | None) or ("show", Show.DUPLICATES)...


# The order types appear in the sidebar; others follow alphabetically, Unknown last.
TYPE_ORDER = (
    "Checkpoint",
    "LORA",
    "LoCon",
    "DoRA",
    "TextualInversion",
    "Hypernetwork",
    "VAE",
    "Controlnet",
    "Upscaler",
)


class TypeSidebar(QListWidget):
    """ "All", one row per model type with its count, then the Duplicates, Updates and
    Offline and Removed views."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sidebar")
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(160)
        self.setMaximumWidth(240)

    def set_counts(self, snapshot: LibrarySnapshot) -> None:
        current = self.current_filter()
        self.blockSignals(True)
        self.clear()
        counts = snapshot.type_counts()
        self._add(f"All files  ({len(snapshot.entries)})", ("type", None),
                  "Every model file in the library")
        known = [t for t in TYPE_ORDER if t in counts]
        others = sorted(t for t in counts if t not in TYPE_ORDER and t != UNKNOWN_TYPE)
        for model_type in [*known, *others]:
            self._add(f"{type_label(model_type)}  ({counts[model_type]})", ("type", model_type))
        if UNKNOWN_TYPE in counts:
            self._add(
                f"{type_label(UNKNOWN_TYPE)}  ({counts[UNKNOWN_TYPE]})", ("type", UNKNOWN_TYPE)
            )
        separator = QListWidgetItem("")
        separator.setFlags(Qt.ItemFlag.NoItemFlags)
        separator.setSizeHint(QSize(10, 10))
        self.addItem(separator)
        dupes, extra = snapshot.duplicate_count, snapshot.duplicate_extra_copies
        self._add(f"Duplicates  ({plural(dupes, 'file')})", ("show", Show.DUPLICATES),
                  f"{plural(dupes, 'file')} with a byte-for-byte copy in the library: "
                  f"{plural(extra, 'extra copy', 'extra copies')} could go" if dupes
                  else "No file has a byte-for-byte copy in the library")
        updates = snapshot.update_count
        self._add(f"Updates  ({plural(updates, 'model')})", ("show", Show.UPDATES),
                  f"{plural(updates, 'model')} with a newer version on Civitai "
                  f"({plural(snapshot.update_file_count, 'file')} on disk)")
        self._add(f"Offline  ({snapshot.offline_count})", ("show", Show.OFFLINE),
                  "Files whose drive or folder is not there now")
        self._add(f"Removed  ({snapshot.removed_count})", ("show", Show.REMOVED),
                  "Files whose model or version Civitai removed")
        self.blockSignals(False)
        self.select_filter(current if self._row_of(current) is not None else ("type", None))

    def _add(self, text: str, kind: SidebarKind, tip: str = "") -> None:
        item = QListWidgetItem(text)
        item.setToolTip(tip)
        item.setData(SIDEBAR_KIND, kind)
        self.addItem(item)

    def current_filter(self) -> SidebarKind:
        item = self.currentItem()
        kind = item.data(SIDEBAR_KIND) if item is not None else None
        return kind if kind else ("type", None)

    def _row_of(self, kind: SidebarKind) -> int | None:
        for row in range(self.count()):
            if self.item(row).data(SIDEBAR_KIND) == kind:
                return row
        return None

    def select_filter(self, kind: SidebarKind) -> None:
        row = self._row_of(kind)
        if row is not None:
            self.setCurrentRow(row)

    def item_for(self, kind: SidebarKind) -> QListWidgetItem | None:
        row = self._row_of(kind)
        return None if row is None else self.item(row)
