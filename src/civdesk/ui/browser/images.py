"""A version's images: a large carousel in the detail pane, and a viewer for one image.

Both load through the :class:`ThumbnailLoader` (off the GUI thread, bytes and pixels
capped) at a size that keeps the image's proportions. What made an image (``meta``) is
untrusted text: it is shown as plain text only, already cut to a bound by the core
(:class:`~civdesk.core.civitai.generation.GenerationParams`).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QSize, Qt, Signal, Slot
from PySide6.QtGui import (
    QFocusEvent,
    QGuiApplication,
    QKeyEvent,
    QMouseEvent,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from civdesk.core.civitai.generation import GenerationParams
from civdesk.core.civitai.schema import Image
from civdesk.ui.browser.model import sized_image_url
from civdesk.ui.thumbnails import ThumbnailLoader, thumbnail_key

#: The carousel's image box and the viewer's (pixels); an image is fitted inside.
CAROUSEL_BOX = QSize(400, 440)
#: The least the carousel's image takes: a 900×600 window shows it beside the versions.
CAROUSEL_MIN = QSize(240, 300)
VIEWER_BOX = QSize(1024, 1024)
#: The CDN rendition asked for: wide enough for the viewer, far smaller than the original.
VIEWER_WIDTH = 1024
STEP_BUTTON = QSize(32, 64)
#: The widest the parameters' column grows (pixels): the image takes the rest.
PARAMS_WIDTH = 420
FOCUS_STYLE = "border: 2px solid palette(highlight); border-radius: 4px;"
NSFW_TIP = "NSFW (blurred: allow NSFW in Settings to see it)"


def fitted(image: Image, box: QSize) -> QSize:
    """The image's size scaled to fit ``box`` (the whole box when its size is unknown), so
    the loader's fill-and-crop cuts nothing off."""
    if not image.width or not image.height or image.width <= 0 or image.height <= 0:
        return QSize(box)
    scale = min(box.width() / image.width, box.height() / image.height)
    return QSize(max(1, round(image.width * scale)), max(1, round(image.height * scale)))


class _ImageLabel(QLabel):
    """Shows one image scaled down to fit the room it has (never asking for more), a
    placeholder text while it loads; ``clicked`` on a left click."""

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image: QPixmap | None = None

    def set_image(self, pixmap: QPixmap) -> None:
        self.image = pixmap
        self._fit()

    def clear(self) -> None:
        self.image = None
        super().clear()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self.image is None:
            return
        ratio = self.devicePixelRatioF()
        room = self.size() * ratio
        image = self.image
        if image.width() > room.width() or image.height() > room.height():
            image = image.scaled(room, Qt.AspectRatioMode.KeepAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
            image.setDevicePixelRatio(ratio)
        self.setPixmap(image)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
                event.position().toPoint()):
            self.clicked.emit()
        super().mouseReleaseEvent(event)


class _LoadedImage(QObject):
    """One image shown through the loader: asks for it, and fills the label when it lands.

    A child of its label, listening through its own slots: Qt drops the connections to the
    shared loader when the label (and the carousel or viewer holding it) goes.
    """

    def __init__(self, thumbnails: ThumbnailLoader, label: _ImageLabel) -> None:
        super().__init__(label)
        self.thumbnails = thumbnails
        self.label = label
        self.key: str | None = None
        thumbnails.thumbnail_ready.connect(self.ready)
        thumbnails.thumbnail_failed.connect(self._failed_to_load)

    def show(self, url: str, size: QSize, blurred: bool) -> None:
        self.key = thumbnail_key(url, size, blurred=blurred)
        pixmap = self.thumbnails.pixmap(url, size, blurred=blurred)
        self._set(pixmap)

    @Slot(str)
    def ready(self, key: str) -> None:
        if key == self.key:
            self._set(self.thumbnails.cached(key))

    @Slot(str, str)
    def _failed_to_load(self, key: str, _why: str) -> None:
        self.failed(key)

    def failed(self, key: str) -> None:
        if key == self.key:
            self.label.clear()
            self.label.setText("This image could not be loaded")

    def clear(self) -> None:
        self.key = None
        self.label.clear()

    def _set(self, pixmap: QPixmap | None) -> None:
        if pixmap is not None and not pixmap.isNull():
            self.label.set_image(pixmap)
        elif self.key is not None and self.thumbnails.error(self.key):
            self.failed(self.key)
        else:
            self.label.clear()  # not the previous image, at the next resize either
            self.label.setText("Loading…")


class ImageCarousel(QWidget):
    """One large image at a time, previous/next (buttons, ← and →), "3 / 12"; a click on
    the image (or Enter) opens it in ``open_requested``'s viewer."""

    #: index of the image the user wants to see large
    open_requested = Signal(int)

    def __init__(self, thumbnails: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("carousel")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.thumbnails = thumbnails
        self.images: list[Image] = []
        self.blurred: list[bool] = []
        self.current = 0
        self.image = _ImageLabel()
        self.image.setObjectName("carouselImage")
        self.image.setMinimumSize(CAROUSEL_MIN)  # the detail pane gives it the room it has
        self.image.setCursor(Qt.CursorShape.PointingHandCursor)
        self.image.clicked.connect(self.open_current)
        self._loaded = _LoadedImage(thumbnails, self.image)
        self.previous_button = QPushButton("◀")
        self.previous_button.setObjectName("carouselPrevious")
        self.previous_button.setToolTip("Previous image (←)")
        self.previous_button.clicked.connect(self.show_previous)
        self.next_button = QPushButton("▶")
        self.next_button.setObjectName("carouselNext")
        self.next_button.setToolTip("Next image (→)")
        self.next_button.clicked.connect(self.show_next)
        for button in (self.previous_button, self.next_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the carousel keeps the focus
            button.setFixedSize(STEP_BUTTON)
        self.counter = QLabel()
        self.counter.setObjectName("carouselCounter")
        self.counter.setAlignment(Qt.AlignmentFlag.AlignCenter)
        row = QHBoxLayout()
        row.addWidget(self.previous_button)
        row.addWidget(self.image, 1)
        row.addWidget(self.next_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.counter)

    def set_images(self, images: list[Image], blurred: list[bool]) -> None:
        """Show ``images`` from the first; ``blurred[i]``: show the i-th blurred (NSFW)."""
        self.images = list(images)
        self.blurred = list(blurred)
        self.current = 0
        self.setVisible(bool(self.images))
        self._show()

    def show_index(self, index: int) -> None:
        if self.images:
            self.current = index % len(self.images)  # wraps around at both ends
            self._show()

    @Slot()
    def show_previous(self) -> None:
        self.show_index(self.current - 1)

    @Slot()
    def show_next(self) -> None:
        self.show_index(self.current + 1)

    @Slot()
    def open_current(self) -> None:
        if self.images:
            self.open_requested.emit(self.current)

    def _show(self) -> None:
        many = len(self.images) > 1
        self.previous_button.setVisible(many)  # one image: nothing to step to
        self.next_button.setVisible(many)
        if not self.images:
            self._loaded.clear()
            self.counter.clear()
            return
        image, blurred = self.images[self.current], self.blurred[self.current]
        self.counter.setText(f"{self.current + 1} / {len(self.images)}")
        self.image.setToolTip(NSFW_TIP if blurred else "Click to see it large")
        self._loaded.show(sized_image_url(image.url), fitted(image, CAROUSEL_BOX), blurred)

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        self.image.setStyleSheet(FOCUS_STYLE)  # the arrows act here: say so

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self.image.setStyleSheet("")

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Left:
            self.show_previous()
        elif key == Qt.Key.Key_Right:
            self.show_next()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.open_current()
        else:
            super().keyPressEvent(event)


#: Finds the generation parameters of the viewer's image when it came without them (the
#: /models form has none): later calls the viewer's ``show_params`` (or ``params_failed``).
ParamsLookup = Callable[["ImageViewer"], None]


class ImageViewer(QDialog):
    """One image large, with its generation parameters when Civitai sends them, and Copy
    (the A1111 "parameters" text). Nothing about parameters shows when there are none."""

    def __init__(self, thumbnails: ThumbnailLoader, image: Image, blurred: bool,
                 lookup: ParamsLookup | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageViewer")
        self.setWindowTitle("Image")
        self.image = image
        self.params: GenerationParams | None = None
        self.picture = _ImageLabel()
        self.picture.setObjectName("viewerImage")
        self.picture.setMinimumSize(240, 240)
        self.picture.setToolTip(NSFW_TIP if blurred else "")
        self._loaded = _LoadedImage(thumbnails, self.picture)
        self._loaded.show(sized_image_url(image.url, VIEWER_WIDTH), fitted(image, VIEWER_BOX),
                          blurred)
        self.params_box = QWidget()
        self.params_box.setObjectName("generationParams")
        self.fields = QFormLayout(self.params_box)
        self.copy_button = QPushButton("Copy parameters")
        self.copy_button.setObjectName("copyParameters")
        self.copy_button.setToolTip("Copy them as A1111 writes them (PNG Info pastes them back)")
        self.copy_button.clicked.connect(self.copy_parameters)
        self.status = QLabel()
        self.status.setObjectName("paramsStatus")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        side = QVBoxLayout()
        side.addWidget(self.params_box)
        side.addWidget(self.status)
        side.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.picture, 1)
        row.addLayout(side)
        self.params_box.setMaximumWidth(PARAMS_WIDTH)
        layout = QVBoxLayout(self)
        layout.addLayout(row, 1)
        layout.addWidget(buttons)
        if blurred:  # its prompt would tell what the blur hides
            self.show_params(None)
            self.status.setText("Allow NSFW in Settings to see its parameters")
            return
        self.show_params(image.meta)
        if image.meta is None and image.has_meta is not False and lookup is not None:
            self.status.setText("Asking Civitai for its parameters…")
            lookup(self)

    def show_params(self, params: GenerationParams | None) -> None:
        """Fill the parameters (plain text only); hide them all when there are none."""
        self.params = params
        self.status.clear()
        while self.fields.rowCount():
            self.fields.removeRow(0)
        for label, value in params.labelled() if params is not None else []:
            self.fields.addRow(f"{label}:", _plain_text(value, multiline=label.endswith(
                "rompt")))
        self.params_box.setVisible(params is not None)
        self.copy_button.setVisible(params is not None)

    def params_failed(self, text: str) -> None:
        self.status.setText(text)

    @Slot()
    def copy_parameters(self) -> None:
        if self.params is not None:
            QGuiApplication.clipboard().setText(self.params.a1111_text())


def _plain_text(value: str, *, multiline: bool) -> QWidget:
    """A read-only field that shows ``value`` as text, never as markup."""
    if multiline:
        edit = QPlainTextEdit(value)
        edit.setReadOnly(True)
        edit.setMaximumHeight(110)
        edit.setMinimumWidth(PARAMS_WIDTH * 2 // 3)
        return edit
    label = QLabel(value)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label
