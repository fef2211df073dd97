"""Small real images for the double's previews.

PNG is generated here (pure Python + zlib) so each preview can differ; JPEG and WebP are tiny
pre-encoded constants (16x12, made once with Qt), which is all a client needs to decode.
"""

from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass

# 16x12 baseline JPEG and lossy WebP of a colour gradient.
_JPEG_16X12 = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEAZABkAAD/2wBDAAoHBwgHBgoICAgLCgoLDhgQDg0NDh0VFhEYIx8lJCIfIiEmKzcvJik0"
    "KSEiMEExNDk7Pj4+JS5ESUM8SDc9Pjv/2wBDAQoLCw4NDhwQEBw7KCIoOzs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7"
    "Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozv/wAARCAAMABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAA"
    "AAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAk"
    "M2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKT"
    "lJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QA"
    "HwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdh"
    "cRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hp"
    "anN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk"
    "5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwCvBYdOK0YLDpxV6CFOOK0YIU9KjNMS9TlynFy0P//Z"
)
_WEBP_16X12 = base64.b64decode(
    "UklGRkoAAABXRUJQVlA4ID4AAADQAQCdASoQAAwAAkA4JbACdAEJEuJ/AAD+0LtAAEuOMhTUraYjt/SaPqJMpaOL"
    "Kv9Uqp/TLg3/ia9vp8AAAA=="
)

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    width: int
    height: int
    content_type: str


def png_bytes(width: int = 64, height: int = 96, seed: int = 0) -> bytes:
    """An RGB gradient PNG whose colours depend on `seed`, so previews are distinguishable."""
    r0, g0, b0 = (seed * 53) % 256, (seed * 97) % 256, (seed * 151) % 256
    row = bytearray(width * 3)
    row[0::3] = bytes((r0 + x * 3) % 256 for x in range(width))
    row[2::3] = bytes((b0 + x * 2) % 256 for x in range(width))
    rows = bytearray()
    for y in range(height):
        row[1::3] = bytes(((g0 + y * 2) % 256,)) * width  # green varies down the image
        rows += b"\x00" + row  # filter type "None" for this scanline

    def chunk(tag: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(tag + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 6))
        + chunk(b"IEND", b"")
    )


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` (a decompression bomb's
    header): its one row of image data is all a decoder would find."""
    def chunk(tag: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(tag + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1))) + chunk(b"IEND", b""))


def encode_image(kind: str, seed: int = 0) -> EncodedImage:
    if kind == "png":
        return EncodedImage(png_bytes(seed=seed), 64, 96, CONTENT_TYPES["png"])
    if kind == "jpeg":
        return EncodedImage(_JPEG_16X12, 16, 12, CONTENT_TYPES["jpeg"])
    if kind == "webp":
        return EncodedImage(_WEBP_16X12, 16, 12, CONTENT_TYPES["webp"])
    raise ValueError(f"unknown image kind {kind!r}; use png, jpeg or webp")
