"""One model in full: versions, files with Download buttons, trigger words, gallery, description."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QGuiApplication, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from civdesk.core.civitai.schema import Model, ModelFile, ModelVersion
from civdesk.core.civitai.sites import CIVITAI_SITES, Sites
from civdesk.ui.browser.images import CAROUSEL_BOX, CAROUSEL_MIN, ImageCarousel, ImageViewer
from civdesk.ui.browser.versions import VersionList
from civdesk.ui.downloads.confirm import confirm_flagged
from civdesk.ui.downloads.messages import size_text
from civdesk.ui.elided import MiddleElidedLabel
from civdesk.ui.thumbnails import ThumbnailLoader

FILE_COLUMNS = ("Name", "Size", "Format", "Precision", "")
#: Before the name of a file Civitai's pickle or virus scan flagged (its tooltip says why).
FLAG_MARK = "\N{WARNING SIGN}"



class SafeTextBrowser(QTextBrowser):
    """Shows Civitai's HTML without fetching anything: no tracking pixels, no stalls.

    Links open in the user's browser.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenExternalLinks(True)
        self.setOpenLinks(True)

    def loadResource(self, type: int, name: QUrl | str) -> Any:
        # Only inline data may render; remote (and local) URLs load nothing.
        if QUrl(name).scheme() != "data":
            return None
        return super().loadResource(type, name)


def short_date(iso: str | None) -> str:
    return iso[:10] if iso else "—"


def file_details(f: ModelFile) -> tuple[str, str, str, str]:
    """The table's cells for a file: name, size, format, precision."""
    precision = " ".join(p for p in (f.metadata.fp, f.metadata.size) if p) or "—"
    return f.name, size_text(f.size_bytes), f.metadata.format or "—", precision


class ModelDetail(QWidget):
    """Detail of one :class:`Model`; ask for downloads through ``download_requested``."""

    #: version id, file id (None: the version's primary file), and whether the user chose
    #: a file Civitai's scans flagged (they confirmed it: ui/downloads/confirm.py)
    download_requested = Signal(int, object, bool)
    #: version id: the user wants to see that version's file on the Models page
    show_in_library_requested = Signal(int)
    back_requested = Signal()
    #: a link of the pane was clicked (the model's page on Civitai)
    open_url_requested = Signal(str)
    #: the user wants to pick the folder downloads of this model go to
    change_target_requested = Signal()
    #: the version shown changed (the page works out its folder): ModelVersion or None
    version_shown = Signal(object)
    #: an ImageViewer opened (tests and the window may watch it)
    image_viewer_opened = Signal(object)

    def __init__(
        self, thumbnails: ThumbnailLoader, sites: Callable[[], Sites] = lambda: CIVITAI_SITES,
        parent: QWidget | None = None,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.sites = sites  # read when shown: the Settings page may change the sites
        self.model: Model | None = None
        self._installed: set[int] = set()
        self._allow_nsfw = False
        #: Asks Civitai for the parameters of an image of a version (set by the page).
        self.params_lookup: Callable[[int, ImageViewer], None] | None = None
        self._build()

    # -- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        self.back_button = QPushButton("← Back to results")
        self.back_button.setObjectName("detailBack")
        self.back_button.clicked.connect(self.back_requested)
        self.title = QLabel()
        self.title.setObjectName("detailTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.title.setFont(font)
        self.link = QLabel()
        self.link.setObjectName("detailLink")
        self.link.linkActivated.connect(self.open_url_requested)  # the page says if it failed
        top.addWidget(self.back_button)
        top.addWidget(self.title, 1)
        top.addWidget(self.link)
        outer.addLayout(top)

        self.body_scroll = scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        # Whatever the width, nothing here is reached by scrolling sideways.
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(scroll, 1)
        body = QWidget()
        layout = QVBoxLayout(body)
        scroll.setWidget(body)

        self.versions = VersionList()
        self.versions.version_chosen.connect(self._version_chosen)
        versions_label = QLabel("Versions")
        versions_label.setBuddy(self.versions)
        self.download_version_button = QPushButton("Download")
        self.download_version_button.setObjectName("downloadVersion")
        self.download_version_button.setToolTip("Download this version's primary file")
        self.download_version_button.clicked.connect(self._download_version)
        self.show_in_library_button = QPushButton("Show in library")
        self.show_in_library_button.setObjectName("showInLibrary")
        self.show_in_library_button.setToolTip(
            "This version is on disk: show it on the Models page")
        self.show_in_library_button.clicked.connect(self._show_in_library)
        # The images large on the left; beside them what to choose and download.
        side = QVBoxLayout()
        side.addWidget(versions_label)
        side.addWidget(self.versions)

        # Where the file goes, next to the button that sends it there.
        target_row = QHBoxLayout()
        # A long path is elided in its middle (whole in the tooltip), never widening the pane.
        self.target_label = MiddleElidedLabel()
        self.target_label.setObjectName("targetFolder")
        self.change_target_button = QPushButton("Change…")
        self.change_target_button.setObjectName("changeTarget")
        self.change_target_button.setToolTip(
            "Download this model into another folder (inside your library folders)")
        self.change_target_button.clicked.connect(self.change_target_requested)
        target_row.addWidget(self.target_label, 1)
        target_row.addWidget(self.change_target_button)
        side.addLayout(target_row)
        buttons_row = QHBoxLayout()
        buttons_row.addStretch(1)
        buttons_row.addWidget(self.show_in_library_button)
        buttons_row.addWidget(self.download_version_button)
        side.addLayout(buttons_row)

        form = QFormLayout()
        self.info = {name: QLabel() for name in ("Type", "Base model", "Creator", "Created",
                                                  "Published", "On disk")}
        for name, label in self.info.items():
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(f"{name}:", label)
        side.addLayout(form)

        words_row = QHBoxLayout()
        self.trigger_words = QLabel()
        self.trigger_words.setObjectName("triggerWords")
        self.trigger_words.setWordWrap(True)
        self.trigger_words.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_words_button = QPushButton("Copy")
        self.copy_words_button.setObjectName("copyTriggerWords")
        self.copy_words_button.setToolTip("Copy the trigger words to the clipboard")
        self.copy_words_button.clicked.connect(self.copy_trigger_words)
        words_row.addWidget(QLabel("Trigger words:"))
        words_row.addWidget(self.trigger_words, 1)
        words_row.addWidget(self.copy_words_button)
        side.addLayout(words_row)
        side.addStretch(1)
        self.carousel = ImageCarousel(self.thumbnails)
        self.carousel.open_requested.connect(self.open_image)
        top_row = QHBoxLayout()
        top_row.addWidget(self.carousel, 3)
        top_row.addLayout(side, 2)
        layout.addLayout(top_row)

        self.files = QTableWidget(0, len(FILE_COLUMNS))
        self.files.setObjectName("versionFiles")
        self.files.setHorizontalHeaderLabels(FILE_COLUMNS)
        self.files.verticalHeader().hide()
        self.files.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.files.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.files.setTabKeyNavigation(False)  # Tab leaves the table, not cell by cell
        header = self.files.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(FILE_COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.files)

        self.hidden_images = QLabel()
        self.hidden_images.setObjectName("hiddenImages")
        self.hidden_images.hide()
        layout.addWidget(self.hidden_images)

        self.description = SafeTextBrowser()
        self.description.setObjectName("description")
        self.description.setMinimumHeight(200)
        layout.addWidget(self.description)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        # The carousel as tall as the pane shows (the files and description below it),
        # between its least size and its rendition's height. From the pane's own height:
        # the scroll area's is not laid out yet when this runs.
        room = (self.height() - self.back_button.sizeHint().height()
                - self.carousel.counter.sizeHint().height() - 40)
        self.carousel.image.setMinimumHeight(
            max(CAROUSEL_MIN.height(), min(room, CAROUSEL_BOX.height())))

    # -- content ------------------------------------------------------------------------------

    def show_model(
        self, model: Model, installed_versions: set[int] | None = None, allow_nsfw: bool = False
    ) -> None:
        """Show ``model``; ``installed_versions`` marks the versions already on disk."""
        keep = self.current_version()
        self.model = model
        self._installed = set(installed_versions or ())
        self._allow_nsfw = allow_nsfw
        self.title.setText(model.name)
        url = self.sites().page_of(model)
        self.link.setText(f'<a href="{url}">Open on Civitai</a>')
        self.link.setToolTip(url)
        self.info["Type"].setText(model.type)
        self.info["Creator"].setText(model.creator or "—")
        self.versions.show_versions(model.versions, self._installed,
                                    keep.id if keep is not None else None)

    def set_installed(self, installed_versions: set[int]) -> None:
        if self.model is not None:
            self.show_model(self.model, installed_versions, self._allow_nsfw)

    def current_version(self) -> ModelVersion | None:
        return self.versions.current_version() if self.model is not None else None

    @Slot()
    def _version_chosen(self) -> None:
        version = self.current_version()
        model = self.model
        self.download_version_button.setEnabled(version is not None and bool(version.files))
        on_disk = version is not None and version.id in self._installed
        self.show_in_library_button.setVisible(on_disk)
        early_access = version.early_access_text() if version is not None else None
        if on_disk:
            tip = "This version is on disk: a file your library holds is not downloaded again"
        elif early_access is not None:
            tip = (f"In {early_access}: before then Civitai lets only those who unlocked it "
                   "on the site download it")
        else:
            tip = "Download this version's primary file"
        self.download_version_button.setToolTip(tip)
        # Said on the button itself, before a download is tried (and refused).
        self.download_version_button.setText(
            f"Download ({early_access})" if early_access and not on_disk else "Download")
        self.info["Base model"].setText((version.base_model if version else None) or "—")
        self.info["Created"].setText(short_date(version.created_at if version else None))
        published = short_date(version.published_at if version else None)
        self.info["Published"].setText(
            f"{published} · {early_access}" if early_access else published)
        self.info["On disk"].setText(
            "Yes" if version is not None and version.id in self._installed else "No"
        )
        words = version.trained_words if version else []
        self.trigger_words.setText(", ".join(words) if words else "None")
        self.copy_words_button.setEnabled(bool(words))
        self._fill_files(version)
        self._fill_gallery(version)
        self.version_shown.emit(version)
        parts = [model.description if model else None, version.description if version else None]
        self.description.setHtml("<hr>".join(p for p in parts if p) or "<i>No description</i>")

    def _fill_files(self, version: ModelVersion | None) -> None:
        files = version.files if version else []
        early_access = version.early_access_text() if version else None
        self.files.setRowCount(len(files))
        for row, f in enumerate(files):
            for column, text in enumerate(file_details(f)):
                item = QTableWidgetItem(text)
                if column == 0 and f.danger:
                    item.setText(f"{FLAG_MARK} {text}")
                    item.setToolTip(f.danger)
                elif column == 0 and f.primary:
                    item.setToolTip("The primary file of this version")
                self.files.setItem(row, column, item)
            button = QPushButton("Download")
            button.setObjectName(f"downloadFile-{f.id}")
            button.setToolTip(f"Download {f.name}" + (
                " (flagged by Civitai's scans: you will be asked first)" if f.danger else "")
                + (f" — in {early_access}: only those who unlocked it may download it"
                   if early_access else ""))
            button.clicked.connect(
                lambda _=False, v=version, file=f: self._request(v, file, file.id))
            self.files.setCellWidget(row, len(FILE_COLUMNS) - 1, button)
        self.files.setFixedHeight(
            self.files.horizontalHeader().height() + 4
            + sum(self.files.rowHeight(r) for r in range(len(files)))
        )  # fmt: skip

    def _fill_gallery(self, version: ModelVersion | None) -> None:
        """Every still image; the NSFW ones blurred (with a tooltip) unless allowed."""
        images = [i for i in (version.images if version else []) if i.type == "image"]
        blurred = [not (self._allow_nsfw or image.is_sfw) for image in images]
        self.carousel.set_images(images, blurred)
        count = sum(blurred)
        self.hidden_images.setText(
            f"{count} NSFW image{'s' if count != 1 else ''} blurred "
            "(allow NSFW in Settings to see them)"
        )
        self.hidden_images.setVisible(count > 0)

    @Slot(int)
    def open_image(self, index: int) -> None:
        """The carousel's ``index``-th image large, in a viewer that does not block."""
        version = self.current_version()
        image, blurred = self.carousel.images[index], self.carousel.blurred[index]
        lookup = self.params_lookup
        viewer = ImageViewer(
            self.thumbnails, image, blurred,
            (lambda v: lookup(version.id, v)) if lookup is not None and version else None,
            self)  # fmt: skip
        viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        screen = self.screen().availableGeometry().size()
        viewer.resize(min(1100, screen.width() * 9 // 10), min(760, screen.height() * 9 // 10))
        viewer.open()
        self.image_viewer_opened.emit(viewer)

    def set_target(self, folder: str | None, chosen: bool = False) -> None:
        """Say where a Download click saves to (None: still being worked out)."""
        if folder is None:
            self.target_label.set_parts("Saves to …", "")
            self.target_label.setToolTip("")
            return
        self.target_label.set_parts("Saves to ", folder, "  (chosen)" if chosen else "")
        self.target_label.setToolTip(
            ("The folder you chose for this model:\n" if chosen
             else "Where your library keeps this type of model:\n") + folder)

    # -- actions ------------------------------------------------------------------------------

    @Slot()
    def copy_trigger_words(self) -> None:
        version = self.current_version()
        if version is not None and version.trained_words:
            QGuiApplication.clipboard().setText(", ".join(version.trained_words))

    @Slot()
    def _download_version(self) -> None:
        version = self.current_version()
        if version is not None:
            self._request(version, version.primary_file, None)

    @Slot()
    def _show_in_library(self) -> None:
        version = self.current_version()
        if version is not None:
            self.show_in_library_requested.emit(version.id)

    def _request(self, version: ModelVersion, file: ModelFile | None,
                 file_id: int | None) -> None:
        """Ask for the download; a file Civitai's scans flagged only once the user agreed."""
        danger = file.danger if file is not None else None
        if danger is not None and not confirm_flagged(self, danger):
            return
        self.download_requested.emit(version.id, file_id, danger is not None)
