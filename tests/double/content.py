"""File contents for fake model files, and the hashes Civitai publishes for them.

Contents are served from memory, from disk (with sendfile) or generated on the fly from a seed,
so a multi-GB file never sits in memory. Hashes are computed once, in a single streaming pass.
"""

from __future__ import annotations

import hashlib
import json
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

try:  # BLAKE3 is published by Civitai, but only index it when the package is around.
    import blake3 as _blake3  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _blake3 = None

CHUNK = 1 << 20
AUTOV1_OFFSET = 0x100000
AUTOV1_LENGTH = 0x10000
AUTOV1_MIN_SIZE = 0x200000  # Civitai's scanner leaves AutoV1 out for files under 2 MiB


class Content:
    """Bytes of one file; subclasses decide where they come from."""

    size: int
    path: Path | None = None  # set when the bytes live on disk (lets the server use sendfile)

    def iter_range(self, start: int, end: int, chunk: int = CHUNK) -> Iterator[bytes]:
        raise NotImplementedError

    def read(self, start: int = 0, end: int | None = None) -> bytes:
        return b"".join(self.iter_range(start, self.size if end is None else end))


class BytesContent(Content):
    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self.size = len(self._data)

    def iter_range(self, start: int, end: int, chunk: int = CHUNK) -> Iterator[bytes]:
        view = memoryview(self._data)
        for pos in range(start, end, chunk):
            yield bytes(view[pos : min(end, pos + chunk)])


class PathContent(Content):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size

    def iter_range(self, start: int, end: int, chunk: int = CHUNK) -> Iterator[bytes]:
        assert self.path is not None
        with self.path.open("rb") as fh:
            fh.seek(start)
            remaining = end - start
            while remaining > 0:
                block = fh.read(min(chunk, remaining))
                if not block:
                    return
                remaining -= len(block)
                yield block


class GeneratedContent(Content):
    """Deterministic pseudo-random bytes of any size, produced on demand.

    Block k of the file is a seed-specific random block rotated by a k-dependent amount, so any
    byte range is a zero-copy slice of one doubled buffer. An optional prefix (e.g. a
    safetensors header) replaces the first bytes.
    """

    _BLOCK = 1 << 16

    def __init__(self, size: int, seed: int, prefix: bytes = b"") -> None:
        self.size = size
        self._seed = seed
        self._prefix = prefix if len(prefix) <= size else b""
        self._doubled_buffer: memoryview | None = None

    @property
    def _doubled(self) -> memoryview:
        if self._doubled_buffer is None:  # made on first read: building catalogs stays cheap
            base = random.Random(self._seed).randbytes(self._BLOCK)
            self._doubled_buffer = memoryview(base + base)
        return self._doubled_buffer

    def _rotation(self, block_index: int) -> int:
        return (block_index * 40503 + 7) % self._BLOCK

    def iter_range(self, start: int, end: int, chunk: int = CHUNK) -> Iterator[bytes]:
        pos = start
        while pos < end:
            if pos < len(self._prefix):
                stop = min(end, len(self._prefix))
                yield self._prefix[pos:stop]
                pos = stop
                continue
            block, offset = divmod(pos, self._BLOCK)
            stop = min(end, (block + 1) * self._BLOCK, pos + chunk)
            rot = self._rotation(block)
            yield self._doubled[rot + offset : rot + offset + (stop - pos)].tobytes()
            pos = stop


def safetensors_header(payload_size: int, metadata: dict[str, str] | None = None) -> bytes:
    """The 8-byte length + JSON header of a safetensors file with one U8 tensor."""
    header = {
        "__metadata__": metadata or {"format": "pt"},
        "weight": {"dtype": "U8", "shape": [payload_size], "data_offsets": [0, payload_size]},
    }
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes with spaces
    return len(raw).to_bytes(8, "little") + raw


def make_safetensors(payload: bytes, metadata: dict[str, str] | None = None) -> bytes:
    """A valid little safetensors file (useful for AutoV3 and header-reading tests)."""
    return safetensors_header(len(payload), metadata) + payload


def generated_safetensors(size: int, seed: int) -> GeneratedContent:
    """`size` bytes that start with a valid safetensors header covering the rest."""
    header = b""
    for _ in range(3):  # the header's length depends on the payload digits; settle it
        header = safetensors_header(max(0, size - len(header)), {"seed": str(seed)})
    return GeneratedContent(size, seed, prefix=header if len(header) < size else b"")


@dataclass(frozen=True)
class FileHashes:
    """Every hash kind of section 5, uppercase; None where Civitai would leave it out."""

    sha256: str
    crc32: str  # zlib's big-endian form, as Civitai's Python tools write it
    crc32_reversed: str  # .NET's little-endian form, which the scanner may have stored
    autov1: str | None
    autov3: str | None  # full 64-character form; the API shows the first 12
    blake3: str | None

    @property
    def autov2(self) -> str:
        return self.sha256[:10]

    def as_api_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.autov1:
            out["AutoV1"] = self.autov1
        out["AutoV2"] = self.autov2
        if self.autov3:
            out["AutoV3"] = self.autov3[:12]
        out["SHA256"] = self.sha256
        out["CRC32"] = self.crc32
        if self.blake3:
            out["BLAKE3"] = self.blake3
        return out

    def lookup_keys(self) -> list[str]:
        """Every string by-hash should answer for this file (uppercase)."""
        keys = [self.sha256, self.autov2, self.crc32, self.crc32_reversed]
        keys += [k for k in (self.autov1, self.blake3) if k]
        if self.autov3:
            keys += [self.autov3, self.autov3[:12]]
        return keys


def _safetensors_payload_offset(content: Content) -> int | None:
    """Where the tensor data starts, or None when the bytes aren't safetensors."""
    if content.size < 8:
        return None
    header_len = int.from_bytes(content.read(0, 8), "little")
    if header_len <= 0 or 8 + header_len > content.size or header_len > 100 * CHUNK:
        return None
    try:
        json.loads(content.read(8, 8 + header_len))
    except ValueError:
        return None
    return 8 + header_len


def compute_hashes(content: Content) -> FileHashes:
    sha = hashlib.sha256()
    crc = 0
    blake = _blake3.blake3() if _blake3 else None
    autov3_start = _safetensors_payload_offset(content)
    autov3 = hashlib.sha256() if autov3_start is not None else None
    pos = 0
    for block in content.iter_range(0, content.size):
        sha.update(block)
        crc = zlib.crc32(block, crc)
        if blake is not None:
            blake.update(block)
        if autov3 is not None and autov3_start is not None and pos + len(block) > autov3_start:
            autov3.update(block[max(0, autov3_start - pos) :])
        pos += len(block)

    autov1 = None
    if content.size >= AUTOV1_MIN_SIZE:
        window = content.read(AUTOV1_OFFSET, AUTOV1_OFFSET + AUTOV1_LENGTH)
        autov1 = hashlib.sha256(window).hexdigest()[:8].upper()
    crc_bytes = (crc & 0xFFFFFFFF).to_bytes(4, "big")
    return FileHashes(
        sha256=sha.hexdigest().upper(),
        crc32=crc_bytes.hex().upper(),
        crc32_reversed=crc_bytes[::-1].hex().upper(),
        autov1=autov1,
        autov3=autov3.hexdigest().upper() if autov3 is not None else None,
        blake3=blake.hexdigest().upper() if blake is not None else None,
    )
