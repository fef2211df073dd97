"""Limits on preview images: their size in bytes and the size they claim to decode to.

A preview comes from Civitai's storage or from a file another tool left beside a model:
both are hostile input. A body of 1.5 GB must not be read into memory, nor a 60 KB PNG
whose header claims 100000x100000 pixels be decoded (40 GB: a decompression bomb). The
dimensions are read from the header (PNG, JPEG, GIF, WebP) without decoding anything, so
the core can check them without Qt; the window's decoder checks them again.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from civdesk.core.errors import CivdeskError

#: The most bytes a preview may have. Civitai's previews are well under 1 MB, its
#: originals a few MB; a bigger "image" is not worth memory or disk.
MAX_IMAGE_BYTES = 32 << 20
#: The widest or tallest an image may claim to be (Civitai caps its own at 1800 x 1000 for
#: thumbnails; originals from upscalers reach 8K).
MAX_IMAGE_SIDE = 16384
#: The most pixels: 48 Mpx decode to ~190 MB of RGBA, Qt's default limit being 256 MB.
MAX_IMAGE_PIXELS = 48_000_000


class ImageRejected(CivdeskError):
    """An image too large (in bytes or in what it decodes to), so it was not taken."""


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)


def sniff_image(data: bytes) -> str | None:
    """The real image format from its magic bytes: png, jpeg, webp, gif, or None."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            return kind
    return None


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the image's header states them; None when it states none we
    read (not an image, or a header cut short)."""
    kind = sniff_image(data)
    try:
        if kind == "png" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if kind == "gif":
            return struct.unpack("<HH", data[6:10])
        if kind == "webp":
            return _webp_dimensions(data)
        if kind == "jpeg":
            return _jpeg_dimensions(data)
    except struct.error:
        return None
    return None


def _webp_dimensions(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: 24-bit width-1 and height-1
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L" and data[20:21] == b"\x2f":  # lossless: 14-bit fields
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # lossy key frame
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


# Start-of-frame markers (baseline, progressive, lossless, arithmetic): not DHT, JPG, DAC.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        if marker == 0xDA or length < 2:  # the scan began without a frame header
            return None
        pos += 2 + length
    return None


def check_dimensions(width: int, height: int, what: str) -> None:
    """Raise :class:`ImageRejected` when an image claims absurd dimensions."""
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        raise ImageRejected(
            f"{what} claims to be {width} x {height} pixels, more than a preview may be "
            f"({MAX_IMAGE_SIDE} a side, {MAX_IMAGE_PIXELS // 1_000_000} megapixels); skipped")


def check_image(data: bytes, what: str) -> None:
    """Raise :class:`ImageRejected` for an image over :data:`MAX_IMAGE_BYTES` or whose
    header claims absurd dimensions. Bytes that are no image we know pass: whoever
    decodes or saves them says so."""
    if len(data) > MAX_IMAGE_BYTES:
        raise too_large(what)
    dimensions = image_dimensions(data)
    if dimensions is not None:
        check_dimensions(*dimensions, what)


def too_large(what: str, limit: int = MAX_IMAGE_BYTES) -> ImageRejected:
    return ImageRejected(f"{what} is larger than {limit >> 20} MB, more than a preview may "
                         "be; skipped")


def read_capped(chunks: Iterable[bytes], what: str, limit: int = MAX_IMAGE_BYTES) -> bytes:
    """The chunks joined, stopping (:class:`ImageRejected`) as soon as they pass ``limit``:
    never more than ``limit`` bytes and a chunk are held."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) > limit:
            raise too_large(what, limit)
    return bytes(buffer)
