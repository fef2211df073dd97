"""Thumbnails for cards: decoded and scaled off the GUI thread, cached on disk and in memory.

A view asks :meth:`ThumbnailLoader.pixmap` while painting. A cached pixmap comes back at
once; otherwise the loader returns ``None`` (paint a placeholder), starts one worker job for
that key, and emits ``thumbnail_ready(key)`` when the pixmap is in memory — the view then
repaints the cards that show that key.

Where a thumbnail comes from, in order:

1. the in-memory LRU (bounded in bytes), keyed by ``source @ WxH``;
2. the disk cache under ``core.paths.thumbnails``, keyed by source + size and, for local files,
   the file's size and mtime (so an edited preview is decoded afresh);
3. the source itself: a local file read and decoded in the ``thumbnails`` pool, or a URL whose
   bytes ``fetch`` returns, in the ``remote-thumbnails`` pool (network waits must not hold up
   local decoding).

A thumbnail may be asked for *blurred* (an NSFW preview the settings do not allow): the
blurred variant is made on the worker from the sharp one and kept in memory under its own
key (:func:`thumbnail_key` with ``blurred=True``); the disk cache holds only sharp images.

Newest requests run first (LIFO): after a fast scroll the cards on screen appear before the
ones scrolled past.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QIODevice,
    QObject,
    QPoint,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QImageReader, QPainter, QPixmap, QPolygon

from civdesk.core.civitai.connections import PREVIEWS
from civdesk.core.errors import CivdeskError, FileProblem
from civdesk.core.images import (
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    ImageRejected,
    check_dimensions,
    check_image,
    too_large,
)
from civdesk.core.sidecars import is_video
from civdesk.ui.tasks import TaskHandle, run_task

if TYPE_CHECKING:
    from civdesk.core.context import Core

log = logging.getLogger(__name__)

#: ``fetch(url)`` returns the image bytes, or ``(bytes, content_type)`` like
#: ``CivitaiClient.fetch_image``. It is called on worker threads, several at once.
Fetch = Callable[[str], "bytes | tuple[bytes, str]"]

DEFAULT_MEMORY_BYTES = 96 * 1024 * 1024
_DISK_FORMAT = "webp"  # small, keeps alpha, and Qt reads and writes it
_DISK_QUALITY = 85
#: What one decode may allocate, in MB (QImageReader's allocation limit): the most pixels
#: a preview may have, as 32-bit colour, with room to spare.
_ALLOCATION_LIMIT_MB = MAX_IMAGE_PIXELS * 4 // (1 << 20) + 16


def is_remote(source: str | os.PathLike[str]) -> bool:
    return isinstance(source, str) and source.startswith(("http://", "https://"))


#: Appended to the key of a blurred variant (after the size, so ``invalidate`` finds it).
BLURRED_SUFFIX = "#blurred"
#: How much a blurred preview is shrunk before it is scaled back up: a 188 px wide card
#: keeps about 8 × 9 colour cells — the mood of the image, nothing recognisable.
BLUR_FACTOR = 24


def thumbnail_key(
    source: str | os.PathLike[str], size: QSize, *, blurred: bool = False
) -> str:
    """The memory key of ``source`` shown at ``size`` (what ``thumbnail_ready`` carries)."""
    key = f"{os.fspath(source)}@{size.width()}x{size.height()}"
    return key + BLURRED_SUFFIX if blurred else key


def blur_image(image: QImage, factor: int = BLUR_FACTOR) -> QImage:
    """``image`` with its detail gone: shrunk ``factor`` times, then smoothly scaled back.

    Two smooth upscaling steps (to a quarter, then to full size) leave soft gradients
    where a single bilinear step would show the tiny image's grid. Any thread.
    """
    if image.isNull():
        return image
    size = image.size()
    smooth = Qt.TransformationMode.SmoothTransformation
    ignore = Qt.AspectRatioMode.IgnoreAspectRatio
    tiny = image.scaled(
        max(2, size.width() // factor), max(2, size.height() // factor), ignore, smooth
    )
    middle = tiny.scaled(
        max(tiny.width(), size.width() // 4), max(tiny.height(), size.height() // 4),
        ignore, smooth,
    )  # fmt: skip
    return middle.scaled(size, ignore, smooth).convertToFormat(
        QImage.Format.Format_ARGB32_Premultiplied
    )


class ThumbnailError(FileProblem):
    """A preview exists but cannot be shown."""


def _disk_name(source: str, size: QSize, version: str) -> str:
    digest = hashlib.sha1(
        f"{source}\0{size.width()}x{size.height()}\0{version}".encode(),
        usedforsecurity=False,
    ).hexdigest()
    return f"{digest[:2]}/{digest}.{_DISK_FORMAT}"


#: Leading bytes of the formats previews come in, and Qt's name for each.
_SIGNATURES: tuple[tuple[int, bytes, bytes], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", b"png"),
    (0, b"\xff\xd8\xff", b"jpeg"),
    (8, b"WEBP", b"webp"),  # after "RIFF" and the size
    (0, b"GIF8", b"gif"),
    (0, b"BM", b"bmp"),
)


def image_format(data: bytes) -> bytes | None:
    """Qt's format name for ``data`` from its signature, or None when it is none of them."""
    for offset, signature, name in _SIGNATURES:
        if data[offset:offset + len(signature)] == signature:
            return name
    return None


def decode_scaled(data: bytes, size: QSize, *, what: str = "image") -> QImage:
    """Decode ``data`` and fill ``size`` with it (scaled, centre-cropped); any thread.

    JPEG decoders scale while decoding when asked for a smaller size, so a 4K preview costs
    a fraction of a full decode. An image claiming absurd dimensions (a decompression
    bomb) is refused before anything is decoded, and no decode may allocate more than
    :data:`_ALLOCATION_LIMIT_MB`.

    The format is named, not detected: detection asks every image plugin, and the SVG one
    connects a QTextStream to the buffer, taking Qt's signal-slot locks while this worker
    holds the GIL (PySide keeps it for that call). The GUI thread may hold the same lock
    while it waits for the GIL: a deadlock, seen in bench_gui.
    """
    buffer = QBuffer()
    buffer.setData(QByteArray(data))
    buffer.open(QIODevice.OpenModeFlag.ReadOnly)
    known = image_format(data)
    reader = QImageReader(buffer, known or QByteArray())
    if known:
        reader.setAutoDetectImageFormat(False)
    reader.setAutoTransform(True)
    reader.setAllocationLimit(_ALLOCATION_LIMIT_MB)
    source_size = reader.size()
    if source_size.isValid():
        try:
            check_dimensions(source_size.width(), source_size.height(), f"The preview {what}")
        except ImageRejected as exc:
            raise ThumbnailError(str(exc)) from None
    if source_size.isValid() and not source_size.isEmpty():
        reader.setScaledSize(
            source_size.scaled(size, Qt.AspectRatioMode.KeepAspectRatioByExpanding)
        )
    image = reader.read()
    if image.isNull():
        raise ThumbnailError(f"The preview {what} cannot be shown: {reader.errorString()}")
    return _fill(image, size)


def video_placeholder(size: QSize) -> QImage:
    """The thumbnail of a video preview another tool left (``.mp4``/``.webm``): a dark
    card with a play mark and the word "Video", so it reads as a video, not as a failure."""
    image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QColor(40, 40, 46))
    painter = QPainter(image)  # on a QImage: allowed off the GUI thread
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        side = min(size.width(), size.height()) // 4
        cx, cy = size.width() // 2, size.height() // 2
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(235, 235, 240))
        painter.drawPolygon(QPolygon([QPoint(cx - side // 2, cy - side // 2 - side // 4),
                                      QPoint(cx - side // 2, cy + side // 2 - side // 4),
                                      QPoint(cx + side // 2, cy - side // 4)]))
        painter.setPen(QColor(235, 235, 240))
        painter.drawText(QRect(0, cy + side // 2, size.width(), side),
                         Qt.AlignmentFlag.AlignCenter, "Video")
    finally:
        painter.end()
    return image


def _fill(image: QImage, size: QSize) -> QImage:
    if image.size() != size:
        scaled = image.scaled(
            size,
            Qt.AspectRatioMode.KeepAspectRatioByExpanding,
            Qt.TransformationMode.SmoothTransformation,
        )
        x = (scaled.width() - size.width()) // 2
        y = (scaled.height() - size.height()) // 2
        image = scaled.copy(QRect(x, y, size.width(), size.height()))
    return image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


class ThumbnailLoader(QObject):
    """Async, cached thumbnails for local preview files and remote image URLs."""

    #: The pixmap for this key is now in memory: repaint whatever shows it.
    thumbnail_ready = Signal(str)
    #: The source could not be shown (missing file, broken image, network error).
    thumbnail_failed = Signal(str, str)

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        fetch: Fetch | None = None,
        *,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.cache_dir = Path(cache_dir)
        self._fetch = fetch
        self._memory: OrderedDict[str, QPixmap] = OrderedDict()
        self._memory_bytes = 0
        self._memory_limit = memory_bytes
        self._pending: dict[str, TaskHandle] = {}
        self._failed: dict[str, str] = {}
        self._order = 0

    @classmethod
    def for_core(cls, core: Core, parent: QObject | None = None) -> ThumbnailLoader:
        """A loader caching under ``core.paths.thumbnails`` and fetching with Civitai clients.

        ``requests`` sessions are not thread-safe, so each worker thread gets its own client
        (:meth:`Core.thread_client`, paced by the governor the rest of the app shares).
        """

        def fetch(url: str) -> bytes | tuple[bytes, str]:
            return core.thread_client(patience=PREVIEWS).fetch_image(url)

        return cls(core.paths.thumbnails, fetch, parent=parent)

    # -- what views call ---------------------------------------------------------------------

    def pixmap(
        self, source: str | os.PathLike[str] | None, size: QSize, *, blurred: bool = False
    ) -> QPixmap | None:
        """The cached thumbnail, or ``None`` after starting to load it (GUI thread only).

        ``blurred``: the variant with its detail gone (:func:`blur_image`), for previews the
        NSFW setting does not allow.
        """
        if not source:
            return None
        key = thumbnail_key(source, size, blurred=blurred)
        pixmap = self._memory.get(key)
        if pixmap is not None:
            self._memory.move_to_end(key)
            return pixmap
        if key not in self._pending and key not in self._failed:
            self._start(os.fspath(source), QSize(size), key, blurred)
        return None

    def request(
        self, source: str | os.PathLike[str], size: QSize, *, blurred: bool = False
    ) -> str:
        """Start loading (if needed) and return the key ``thumbnail_ready`` will carry."""
        self.pixmap(source, size, blurred=blurred)
        return thumbnail_key(source, size, blurred=blurred)

    def cached(self, key: str) -> QPixmap | None:
        return self._memory.get(key)

    def error(self, key: str) -> str | None:
        """Why the thumbnail for ``key`` failed, or ``None``."""
        return self._failed.get(key)

    def is_pending(self, key: str) -> bool:
        return key in self._pending

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def invalidate(self, source: str | os.PathLike[str]) -> None:
        """Forget every size of ``source`` in memory (and its failure), e.g. after a re-scan."""
        prefix = f"{os.fspath(source)}@"
        for key in [k for k in self._memory if k.startswith(prefix)]:
            self._drop(key)
        for key in [k for k in self._failed if k.startswith(prefix)]:
            del self._failed[key]

    def clear_memory(self) -> None:
        self._memory.clear()
        self._memory_bytes = 0
        self._failed.clear()

    def cancel_pending(self) -> None:
        """Drop every queued request (the view changed entirely, or the app quits)."""
        for handle in list(self._pending.values()):
            handle.cancel()
        self._pending.clear()

    # -- loading ----------------------------------------------------------------------------

    def _start(self, source: str, size: QSize, key: str, blurred: bool = False) -> None:
        remote = is_remote(source)
        if remote and self._fetch is None:
            self._failed[key] = "Remote previews are not available"
            return
        self._order = (self._order + 1) % 2_000_000_000  # QThreadPool priority is a C int
        self._pending[key] = run_task(
            self._load,
            source,
            size,
            blurred,
            on_result=partial(self._loaded, key),
            on_error=partial(self._load_failed, key),
            on_finished=partial(self._forget_pending, key),
            pool="remote-thumbnails" if remote else "thumbnails",
            name=f"thumbnail {key}",
            priority=self._order,
            owner=self,
        )

    def _load(self, source: str, size: QSize, blurred: bool = False) -> QImage:
        """Worker thread: the sharp thumbnail (blurred if asked) from :meth:`_load_sharp`."""
        image = self._load_sharp(source, size)
        return blur_image(image) if blurred else image

    def _load_sharp(self, source: str, size: QSize) -> QImage:
        """Worker thread: disk cache, else decode the source and fill the cache."""
        if is_remote(source):
            version = ""
        else:
            try:
                stat = os.stat(source)
            except OSError as exc:
                raise ThumbnailError(
                    f"The preview {source} cannot be read: {exc.strerror}"
                ) from exc
            version = f"{stat.st_size}:{stat.st_mtime_ns}"
        if not is_remote(source) and is_video(source):
            return video_placeholder(size)  # never decoded: Qt reads no video
        cache_file = self.cache_dir / _disk_name(source, size, version)
        image = _cached(cache_file, size)
        if image is not None:
            return image
        image = decode_scaled(self._read(source), size, what=source)
        self._store(cache_file, image)
        return image

    def _read(self, source: str) -> bytes:
        """The source's bytes, never more than :data:`MAX_IMAGE_BYTES` of them in memory."""
        if is_remote(source):
            assert self._fetch is not None
            answer = self._fetch(source)
            data = answer[0] if isinstance(answer, tuple) else answer
            try:
                check_image(data, f"The preview {source}")  # a fetch without its own cap
            except ImageRejected as exc:
                raise ThumbnailError(str(exc)) from None
            return data
        try:
            with open(source, "rb") as fh:  # read to the cap: the file may grow meanwhile
                data = fh.read(MAX_IMAGE_BYTES + 1)
        except OSError as exc:
            raise ThumbnailError(f"The preview {source} cannot be read: {exc.strerror}") from exc
        if len(data) > MAX_IMAGE_BYTES:
            raise ThumbnailError(str(too_large(f"The preview {source}")))
        return data

    @staticmethod
    def _store(cache_file: Path, image: QImage) -> None:
        # A full disk or read-only cache only costs a decode next time: never fail for it.
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            part_file = cache_file.with_name(f"{cache_file.name}.{threading.get_ident()}.part")
            if image.save(str(part_file), _DISK_FORMAT.upper(), _DISK_QUALITY):  # type: ignore[call-overload]  # the stubs miss (str, str, int)
                os.replace(part_file, cache_file)
            else:
                part_file.unlink(missing_ok=True)
        except OSError as exc:
            log.debug("Thumbnail cache write failed for %s: %s", cache_file, exc)

    # -- GUI-thread side --------------------------------------------------------------------

    def _loaded(self, key: str, image: QImage) -> None:
        pixmap = QPixmap.fromImage(image)
        self._memory[key] = pixmap
        self._memory_bytes += _cost(pixmap)
        while self._memory_bytes > self._memory_limit and len(self._memory) > 1:
            self._drop(next(iter(self._memory)))
        self.thumbnail_ready.emit(key)

    def _forget_pending(self, key: str) -> None:
        self._pending.pop(key, None)

    def _load_failed(self, key: str, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, CivdeskError) else f"Preview failed: {exc!r}"
        self._failed[key] = message
        self.thumbnail_failed.emit(key, message)

    def _drop(self, key: str) -> None:
        pixmap = self._memory.pop(key, None)
        if pixmap is not None:
            self._memory_bytes -= _cost(pixmap)


def _cached(cache_file: Path, size: QSize) -> QImage | None:
    """The disk cache's thumbnail when it is there and of ``size`` (checked before decoding:
    the cache folder is on disk, where anything may have replaced a file)."""
    if not cache_file.exists():
        return None
    # Named format: no plugin probing on a worker (see decode_scaled).
    reader = QImageReader(str(cache_file), _DISK_FORMAT.encode())
    reader.setAutoDetectImageFormat(False)
    if reader.size() != size:
        return None
    image = reader.read()
    return None if image.isNull() else image


def _cost(pixmap: QPixmap) -> int:
    return pixmap.width() * pixmap.height() * 4
