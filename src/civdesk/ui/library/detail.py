"""The Models page's detail pane: everything known about the selected file."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import QSize, Qt, QUrl, Signal, Slot
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from civdesk.core.civitai.sites import CIVITAI_SITES, Sites
from civdesk.core.hashing import autov2
from civdesk.core.library.repository import LibraryEntry
from civdesk.core.units import human_size
from civdesk.ui.elided import MiddleElidedLabel
from civdesk.ui.library.delegate import is_unverified
from civdesk.ui.library.rows import LibrarySnapshot, display_name, type_label
from civdesk.ui.thumbnails import ThumbnailLoader, thumbnail_key

DETAIL_PREVIEW = QSize(240, 300)


def civitai_url(entry: LibraryEntry, sites: Sites = CIVITAI_SITES) -> str | None:
    """The entry's model page at its version, on the site that shows it (civitai.red for
    a model or version rated R or above)."""
    if entry.model_id is None:
        return None
    return sites.model_page(entry.model_id, entry.version_id,
                            nsfw_level=entry.nsfw_level, nsfw=entry.nsfw)


#: Where a long name may wrap although it has no space: after these (file names join
#: words with them).
_NAME_JOINERS = re.compile(r"([_\-.,)\]/\\])")


#: A run of letters and digits this long gets break points too (a hash, a name written
#: without separators); non-Latin scripts such as CJK wrap between characters already.
_LONG_RUN = re.compile(r"([A-Za-z0-9]{24})(?=[A-Za-z0-9])")


def breakable(name: str) -> str:
    """``name`` with invisible break points after ``_ - . , ) ] / \\`` and inside long runs
    of letters and digits, so that a label wraps a file name like
    ``sdxl_style_lora_v2.1-pruned_fp16`` (or a path) instead of growing to fit it."""
    return _LONG_RUN.sub("\\1\u200b", _NAME_JOINERS.sub("\\1\u200b", name))


UNVERIFIED_TIP = ("Its bytes never matched a SHA256 Civitai publishes for it (Civitai "
                  "publishes none, or it was linked by hand): it may not be the file "
                  "Civitai serves")


def removed_text(entry: LibraryEntry) -> str:
    """The detail pane's line about a model or version Civitai removed ("" when it is up)."""
    if entry.removed_at is None:
        return ""
    seen = entry.removed_at.astimezone().strftime("%Y-%m-%d")
    return (f"Removed from Civitai ({entry.removed_how}, seen {seen}). The library keeps "
            "its metadata, previews and trigger words.")


def verified_text(entry: LibraryEntry) -> str:
    if entry.verified:
        return "Yes: its SHA256 is the one Civitai publishes"
    if entry.identified:
        return "No: its bytes never matched a SHA256 from Civitai"
    return "No: not identified on Civitai"


_USER_LABELS = (  # what users wrote in other tools, in the order it is shown
    ("title", "Title"), ("activation_text", "Activation text"),
    ("preferred_weight", "Preferred weight"), ("tags", "Tags"), ("favorite", "Favourite"),
    ("sd_version", "SD version"), ("notes", "Notes"), ("description", "Description"),
    ("negative_text", "Negative prompt"),
)


def user_text(user: Mapping[str, Any]) -> str:
    """What the user wrote in other tools (A1111, Lora Manager, Stability Matrix), one
    field a line; empty when there is nothing."""
    lines = []
    for key, label in _USER_LABELS:
        value = user.get(key)
        if value in (None, "", [], False):
            continue
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        elif value is True:
            value = "yes"
        lines.append(f"{label}: {value}")
    return "\n".join(lines)


def link_words(url: str) -> str:
    """``civitai.com/models/1234``: a page's address without its scheme and query."""
    address = QUrl(url)
    return f"{address.host()}{address.path()}" if address.isValid() else url


class DetailPane(QWidget):
    """Everything known about the selected file."""

    copy_requested = Signal(str, str)  # text, what ("trigger word", "path", ...)
    download_update_requested = Signal(object)  # LibraryEntry
    link_requested = Signal(object)  # LibraryEntry

    def __init__(self, thumbnails: ThumbnailLoader, parent: QWidget | None = None,
                 sites: Callable[[], Sites] = lambda: CIVITAI_SITES) -> None:
        super().__init__(parent)
        self.setObjectName("detailPane")
        self.thumbnails = thumbnails
        self.sites = sites  # read when shown: the Settings page may change the sites
        self.entry: LibraryEntry | None = None
        self.allow_nsfw = False  # False: an NSFW model's preview is shown blurred
        self._preview_key: str | None = None
        thumbnails.thumbnail_ready.connect(self._thumbnail_ready)

        self.preview = QLabel()
        self.preview.setFixedSize(DETAIL_PREVIEW)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel()
        self.title.setObjectName("detailTitle")
        self.subtitle = QLabel()
        self.unverified = QLabel("Unverified")
        self.unverified.setObjectName("unverifiedMark")
        self.unverified.setToolTip(UNVERIFIED_TIP)
        for label in (self.title, self.subtitle):
            # Wrapped to the pane: a long file name must not widen it beyond the window.
            label.setWordWrap(True)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.update_label = QLabel()
        self.removed_label = QLabel()
        self.removed_label.setObjectName("removedFromCivitai")
        self.removed_label.setWordWrap(True)
        self.update_button = QPushButton("Download update")
        self.update_button.setObjectName("downloadUpdate")
        self.update_button.clicked.connect(
            lambda: self.entry and self.download_update_requested.emit(self.entry)
        )
        self.link_button = QPushButton("Link to Civitai model…")
        self.link_button.setObjectName("linkButton")
        self.link_button.clicked.connect(
            lambda: self.entry and self.link_requested.emit(self.entry)
        )

        self.fields = QFormLayout()
        self.fields.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self._values: dict[str, QLabel] = {}
        for name in (
            "Type",
            "Base model",
            "Version",
            "Size",
            "Added",
            "Path",
            "SHA256",
            "Verified",
            "AutoV2",
            "Civitai",
        ):
            # A path is elided in its middle (both ends say which file it is).
            value = MiddleElidedLabel() if name == "Path" else QLabel()
            value.setWordWrap(name != "Path")
            if name in ("Path", "SHA256", "Civitai"):
                # Long unbreakable text: clip it to the pane (full text in the tooltip and
                # selectable) rather than widen the pane beyond the window.
                value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
                value.setWordWrap(False)
            # Selectable; only the link takes the keyboard focus (Tab would stop on each).
            value.setTextInteractionFlags(
                Qt.TextInteractionFlag.TextBrowserInteraction if name == "Civitai"
                else Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setOpenExternalLinks(True)
            self._values[name] = value
            self.fields.addRow(name, value)

        self.words_title = QLabel("Trigger words")
        self.words_title.setObjectName("sectionTitle")
        self.words_box = QWidget()
        self.words_layout = _FlowRow(self.words_box)
        self.copy_words = QPushButton("Copy all")
        self.copy_words.setObjectName("copyTriggerWords")
        self.copy_words.clicked.connect(self._copy_all_words)

        self.user_title = QLabel("From your other tools")
        self.user_title.setObjectName("sectionTitle")
        self.user_notes = QLabel()
        self.user_notes.setObjectName("userNotes")
        self.user_notes.setTextFormat(Qt.TextFormat.PlainText)  # their text, never markup
        self.user_notes.setWordWrap(True)
        self.user_notes.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.user_notes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.versions_title = QLabel("On disk")
        self.versions_title.setObjectName("sectionTitle")
        self.versions = QLabel()
        self.versions.setWordWrap(True)
        self.versions.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.versions.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addWidget(self.unverified, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.removed_label)
        row = QHBoxLayout()
        row.addWidget(self.update_label, 1)
        row.addWidget(self.update_button)
        layout.addLayout(row)
        layout.addWidget(self.link_button)
        layout.addLayout(self.fields)
        words_header = QHBoxLayout()
        words_header.addWidget(self.words_title, 1)
        words_header.addWidget(self.copy_words)
        layout.addLayout(words_header)
        layout.addWidget(self.words_box)
        layout.addWidget(self.user_title)
        layout.addWidget(self.user_notes)
        layout.addWidget(self.versions_title)
        layout.addWidget(self.versions)
        layout.addStretch(1)
        self.show_entry(None, LibrarySnapshot())

    def show_entry(self, entry: LibraryEntry | None, snapshot: LibrarySnapshot) -> None:
        self.entry = entry
        has = entry is not None
        for widget in (
            self.preview,
            self.title,
            self.subtitle,
            self.words_box,
            self.versions_title,
            self.versions,
        ):
            widget.setVisible(has)
        for i in range(self.fields.rowCount()):
            self.fields.setRowVisible(i, has)
        self.unverified.setVisible(has and entry is not None and is_unverified(entry))
        if entry is None:
            self.update_label.hide()
            self.removed_label.hide()
            self.update_button.hide()
            self.link_button.hide()
            self.words_title.hide()
            self.copy_words.hide()
            self.user_title.hide()
            self.user_notes.hide()
            return
        self.title.setText(breakable(display_name(entry)))
        self.title.setToolTip(display_name(entry))
        self.subtitle.setText(
            breakable(entry.file_name) if entry.model_name else "Not identified on Civitai")
        self._set_preview(entry)
        update = snapshot.updates.get(entry.model_id) if entry.model_id is not None else None
        self.update_label.setVisible(update is not None)
        self.update_button.setVisible(update is not None)
        if update is not None:
            self.update_label.setText(f"Update available: {update.latest_label()}")
            until = update.early_access_until()
            # Said on the button before a download is tried: Civitai refuses it until then.
            self.update_button.setText(f"Download update (early access until {until})"
                                       if until else "Download update")
        self.link_button.setVisible(not entry.identified)
        self.removed_label.setVisible(entry.removed)
        self.removed_label.setText(removed_text(entry))

        url = civitai_url(entry, self.sites())
        values = {
            "Type": type_label(entry.type),
            "Base model": entry.base_model or "—",
            "Version": entry.version_name or "—",
            "Size": human_size(entry.size),
            "Added": entry.added_at.astimezone().strftime("%Y-%m-%d %H:%M"),
            "Path": f"{entry.path}  (offline: its drive is not there)" if entry.offline
                    else entry.path,
            "SHA256": entry.sha256 or "not hashed yet",
            "Verified": verified_text(entry),
            "AutoV2": autov2(entry.sha256) if entry.sha256 else "—",
            # The link's words: where it goes, short (the whole address in its tooltip).
            "Civitai": f'<a href="{url}">{link_words(url)}</a>' if url else "—",
        }
        for name, text in values.items():
            label = self._values[name]
            label.setTextFormat(
                Qt.TextFormat.RichText if name == "Civitai" else Qt.TextFormat.PlainText
            )
            if isinstance(label, MiddleElidedLabel):
                offline = "  (offline: its drive is not there)" if entry.offline else ""
                label.set_parts("", entry.path, offline)
            else:
                label.setText(text)
            tips = {"Path": text, "SHA256": text, "Civitai": url or ""}
            label.setToolTip(tips.get(name, ""))

        self.words_layout.clear()
        for word in entry.trained_words:
            chip = QToolButton()
            chip.setObjectName("chip")
            chip.setText(word)
            chip.setToolTip("Copy this trigger word")
            chip.clicked.connect(
                lambda _=False, w=word: self.copy_requested.emit(w, "trigger word")
            )
            self.words_layout.add(chip)
        self.words_title.setVisible(bool(entry.trained_words))
        self.copy_words.setVisible(bool(entry.trained_words))
        self.words_box.setVisible(bool(entry.trained_words))

        notes = user_text(entry.user)
        self.user_notes.setText(notes)
        self.user_title.setVisible(bool(notes))
        self.user_notes.setVisible(bool(notes))

        others = snapshot.versions_on_disk(entry.model_id) if entry.model_id else [entry]
        self.versions.setText(
            "\n".join(breakable(f"{e.version_name or e.file_name} — {e.path}") for e in others)
        )

    def set_allow_nsfw(self, allow: bool) -> None:
        self.allow_nsfw = allow
        if self.entry is not None:
            self._set_preview(self.entry)

    def _set_preview(self, entry: LibraryEntry) -> None:
        self._preview_key = None
        pixmap = None
        blurred = entry.nsfw and not self.allow_nsfw
        self.preview.setToolTip("NSFW (blurred: allow NSFW in Settings to see it)" if blurred
                                else "")  # fmt: skip
        if entry.preview:
            self._preview_key = thumbnail_key(entry.preview, DETAIL_PREVIEW, blurred=blurred)
            pixmap = self.thumbnails.pixmap(entry.preview, DETAIL_PREVIEW, blurred=blurred)
        if pixmap is not None:
            self.preview.setPixmap(pixmap)
        else:
            self.preview.clear()
            self.preview.setText("No preview" if not entry.preview else "Loading preview…")

    @Slot(str)
    def _thumbnail_ready(self, key: str) -> None:
        if key == self._preview_key:
            pixmap = self.thumbnails.cached(key)
            if pixmap is not None:
                self.preview.setPixmap(pixmap)

    def _copy_all_words(self) -> None:
        if self.entry is not None and self.entry.trained_words:
            self.copy_requested.emit(", ".join(self.entry.trained_words), "trigger words")


class _FlowRow:
    """Chips laid out in rows that wrap (a minimal flow layout on a vertical box)."""

    PER_ROW = 3

    def __init__(self, parent: QWidget) -> None:
        self.layout = QVBoxLayout(parent)
        self.layout.setContentsMargins(0, 0, 0, 0)
        self.layout.setSpacing(4)
        self._rows: list[QHBoxLayout] = []
        self._count = 0

    def clear(self) -> None:
        while self.layout.count():
            item = self.layout.takeAt(0)
            row = item.layout() if item is not None else None
            while row is not None and row.count():
                chip = row.takeAt(0)
                widget = chip.widget() if chip is not None else None
                if widget is not None:
                    widget.setParent(None)  # gone from findChildren now, freed later
                    widget.deleteLater()
        self._rows.clear()
        self._count = 0

    def add(self, widget: QWidget) -> None:
        if self._count % self.PER_ROW == 0:
            row = QHBoxLayout()
            row.setSpacing(4)
            row.addStretch(1)
            self.layout.addLayout(row)
            self._rows.append(row)
        row = self._rows[-1]
        row.insertWidget(row.count() - 1, widget)
        self._count += 1
