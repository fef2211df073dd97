"""Thumbnails: decoded off the GUI thread, cached on disk and in memory, failures reported."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QSize
from PySide6.QtGui import QImage
from tests.double.images import encode_image, png_bytes, png_claiming
from tests.ui.conftest import detailed_png, high_frequency

from civdesk.ui.thumbnails import (
    ThumbnailError,
    ThumbnailLoader,
    blur_image,
    decode_scaled,
    image_format,
    thumbnail_key,
)

SIZE = QSize(40, 60)


@pytest.fixture
def loader(tmp_path, qtbot):
    loader = ThumbnailLoader(tmp_path / "thumbs")
    yield loader
    loader.cancel_pending()


def _write(path, data):
    path.write_bytes(data)
    return path


def _load(qtbot, loader, source, size=SIZE):
    assert loader.pixmap(source, size) is None  # not in memory yet: loads in the background
    key = thumbnail_key(source, size)
    with qtbot.waitSignal(loader.thumbnail_ready, timeout=3000, check_params_cb=lambda k: k == key):
        pass
    return key


def test_local_preview_is_scaled_to_fill_and_cached(qtbot, loader, tmp_path):
    preview = _write(tmp_path / "a.preview.png", png_bytes(64, 96, seed=3))
    key = _load(qtbot, loader, preview)
    pixmap = loader.pixmap(preview, SIZE)
    assert pixmap is not None and pixmap.size() == SIZE
    assert loader.cached(key) is pixmap
    cached_files = list((tmp_path / "thumbs").rglob("*.webp"))
    assert len(cached_files) == 1


@pytest.mark.parametrize("name", ["a.mp4", "a.preview.webm"])
def test_a_video_preview_shows_as_a_marked_placeholder(qtbot, loader, tmp_path, name):
    # Lora Manager keeps animated previews as video: never decoded, never an error.
    preview = _write(tmp_path / name, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    key = _load(qtbot, loader, preview)
    pixmap = loader.pixmap(preview, SIZE)
    assert pixmap is not None and pixmap.size() == SIZE and loader.error(key) is None
    image = pixmap.toImage()
    assert image.pixelColor(SIZE.width() // 2, SIZE.height() // 2 - 4).lightness() > 200
    assert image.pixelColor(1, 1).lightness() < 60  # the dark card around the play mark


def test_disk_cache_is_reused_by_a_new_loader_and_refreshed_when_the_file_changes(
    qtbot, loader, tmp_path
):
    preview = _write(tmp_path / "b.png", png_bytes(64, 96, seed=4))
    _load(qtbot, loader, preview)
    first = {p: p.stat().st_mtime_ns for p in (tmp_path / "thumbs").rglob("*.webp")}

    again = ThumbnailLoader(tmp_path / "thumbs")
    _load(qtbot, again, preview)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "thumbs").rglob("*.webp")} == first

    _write(preview, png_bytes(64, 96, seed=9))
    st = preview.stat()
    os.utime(preview, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again.invalidate(preview)
    _load(qtbot, again, preview)
    assert len(list((tmp_path / "thumbs").rglob("*.webp"))) == 2


@pytest.mark.parametrize("kind", ["png", "jpeg", "webp"])
def test_decodes_each_format_civitai_serves(kind):
    data = encode_image(kind).data
    assert image_format(data) == kind.encode()  # named to Qt, no plugin probing
    image = decode_scaled(data, QSize(32, 24))
    assert image.width() == 32 and image.height() == 24


#: A 1x1 GIF (Qt reads GIF but cannot write one).
_GIF_1X1 = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01"
            b"\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def _bmp() -> bytes:
    source = QImage(20, 10, QImage.Format.Format_RGB32)
    source.fill(0x336699)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    assert source.save(buffer, "BMP")
    buffer.close()
    return bytes(data)


@pytest.mark.parametrize("kind", ["gif", "bmp"])
def test_other_formats_are_named_too(kind):
    data = _GIF_1X1 if kind == "gif" else _bmp()
    assert image_format(data) == kind.encode()
    assert decode_scaled(data, QSize(8, 4)).size() == QSize(8, 4)


def test_an_unnamed_format_is_still_detected_and_garbage_fails_clearly():
    assert image_format(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None
    with pytest.raises(ThumbnailError, match="cannot be shown"):
        decode_scaled(b"not an image at all", QSize(8, 8), what="junk.png")


def test_a_broken_or_missing_preview_fails_once_with_a_message(qtbot, loader, tmp_path):
    broken = _write(tmp_path / "broken.png", b"not an image at all")
    key = thumbnail_key(broken, SIZE)
    with qtbot.waitSignal(loader.thumbnail_failed, timeout=3000) as blocker:
        loader.pixmap(broken, SIZE)
    assert blocker.args[0] == key
    assert "cannot be shown" in blocker.args[1]
    # Painting again does not retry a known failure.
    assert loader.pixmap(broken, SIZE) is None
    assert not loader.is_pending(key)

    with qtbot.waitSignal(loader.thumbnail_failed, timeout=3000) as blocker:
        loader.pixmap(tmp_path / "gone.png", SIZE)
    assert "cannot be read" in blocker.args[1]


def test_concurrent_requests_for_one_key_load_once(qtbot, loader, tmp_path):
    preview = _write(tmp_path / "c.png", png_bytes(seed=5))
    loader.pixmap(preview, SIZE)
    loader.pixmap(preview, SIZE)
    assert loader.pending_count == 1
    qtbot.waitUntil(lambda: loader.pending_count == 0, timeout=3000)


def test_memory_is_bounded(qtbot, tmp_path):
    small = ThumbnailLoader(tmp_path / "thumbs", memory_bytes=SIZE.width() * SIZE.height() * 4 * 2)
    keys = []
    for seed in range(4):
        keys.append(_load(qtbot, small, _write(tmp_path / f"{seed}.png", png_bytes(seed=seed))))
    assert [small.cached(k) is not None for k in keys] == [False, False, True, True]


def test_a_blurred_variant_is_loaded_and_kept_under_its_own_key(qtbot, loader, tmp_path):
    preview = _write(tmp_path / "busy.png", detailed_png())
    size = QSize(188, 220)
    sharp_key = _load(qtbot, loader, preview, size)
    blurred_key = thumbnail_key(preview, size, blurred=True)
    assert blurred_key != sharp_key
    assert loader.pixmap(preview, size, blurred=True) is None  # a separate job and entry
    with qtbot.waitSignal(
        loader.thumbnail_ready, timeout=3000, check_params_cb=lambda k: k == blurred_key
    ):
        pass
    sharp, blurred = loader.cached(sharp_key), loader.cached(blurred_key)
    assert blurred.size() == sharp.size() == size
    assert blurred.toImage() != sharp.toImage()
    assert high_frequency(sharp) > 20
    assert high_frequency(blurred) < 3
    # The blur keeps the image's overall colour (it is the same picture, softened).
    assert abs(_mean_red(blurred) - _mean_red(sharp)) < 12
    loader.invalidate(preview)  # both variants go together
    assert loader.cached(sharp_key) is None and loader.cached(blurred_key) is None


def test_blur_image_keeps_the_size_and_removes_detail():
    image = decode_scaled(detailed_png(), QSize(100, 60))
    soft = blur_image(image)
    assert soft.size() == image.size()
    assert high_frequency(soft) < high_frequency(image) / 10


def _mean_red(pixmap) -> float:
    image = pixmap.toImage()
    step = 7
    reds = [
        image.pixelColor(x, y).red()
        for y in range(0, image.height(), step)
        for x in range(0, image.width(), step)
    ]
    return sum(reds) / len(reds)


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (7_000, 7_000), (20_000, 10)])
def test_a_preview_claiming_absurd_dimensions_is_refused_before_decoding(width, height):
    """A decompression bomb: a few bytes whose header asks for gigabytes of pixels."""
    with pytest.raises(ThumbnailError, match=f"{width} x {height}"):
        decode_scaled(png_claiming(width, height), QSize(40, 60), what="bomb.png")


def test_a_huge_local_preview_is_not_read(qtbot, loader, tmp_path):
    """1.5 GB named like a preview (sparse: no disk used) fails at once, unread."""
    huge = tmp_path / "huge.preview.png"
    with huge.open("wb") as fh:
        fh.write(png_bytes())
        fh.truncate(1536 << 20)
    with qtbot.waitSignal(loader.thumbnail_failed, timeout=5000) as blocker:
        loader.pixmap(huge, SIZE)
    assert "larger than 32 MB" in blocker.args[1]


def test_a_bomb_planted_in_the_disk_cache_is_not_decoded(qtbot, loader, tmp_path):
    """The cache is a folder on disk too: a file there of another size is made afresh."""
    preview = _write(tmp_path / "d.png", png_bytes(64, 96, seed=6))
    _load(qtbot, loader, preview)
    (cached,) = (tmp_path / "thumbs").rglob("*.webp")
    bomb = QImage(4000, 4000, QImage.Format.Format_RGB32)
    bomb.fill(0)
    assert bomb.save(str(cached), "WEBP")
    fresh = ThumbnailLoader(tmp_path / "thumbs")
    try:
        _load(qtbot, fresh, preview)
        assert fresh.pixmap(preview, SIZE).size() == SIZE
    finally:
        fresh.cancel_pending()
