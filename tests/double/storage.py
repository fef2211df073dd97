"""The storage host: model file bytes behind signed URLs, and preview images.

It mimics an S3/R2 bucket behind a CDN: signed `/files/<id>/<name>` URLs with Range support,
and `/<accountHash>/<uuid>/<params>/<name>` image URLs.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote

from tests.double.api import Reply, Request, UrlSigner
from tests.double.catalog import ACCOUNT_HASH, Catalog, FakeFile
from tests.double.faults import CountedFault, FaultBook

_FILE_PATH = re.compile(r"/files/(\d+)/[^/]+")
_IMAGE_PATH = re.compile(rf"/{ACCOUNT_HASH}/([0-9a-f-]{{36}})/([a-z]+=[^/]+)/[^/]+")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def plain(status: int, text: str, **headers: str) -> Reply:
    return Reply(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8", **headers})


@dataclass
class FileBody:
    """A file (or part of it) to stream after the headers."""

    status: int
    headers: dict[str, str]
    file: FakeFile
    start: int
    end: int  # exclusive
    announce_length: bool = True  # else no Content-Length: the body ends when the socket does
    sent: int = 0  # bytes handed to the socket so far


def content_disposition(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "'")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


class StorageHost:
    def __init__(self, catalog: Catalog, faults: FaultBook, signer: UrlSigner) -> None:
        self.catalog = catalog
        self.faults = faults
        self.signer = signer

    def handle(self, request: Request) -> Reply | FileBody:
        if request.method not in ("GET", "HEAD"):
            return plain(405, "Method Not Allowed", Allow="GET, HEAD")
        if match := _FILE_PATH.fullmatch(request.path):
            return self._file(request, int(match.group(1)))
        if match := _IMAGE_PATH.fullmatch(request.path):
            return self._image(match.group(1))
        return plain(404, "Not Found")

    def _image(self, image_uuid: str) -> Reply | FileBody:
        image = self.catalog.images.get(image_uuid)
        if image is None:
            return plain(404, "Not Found")
        headers = {"Content-Type": image.content_type, "Cache-Control": "public, max-age=31536000"}
        if image.content is not None:  # streamed like a model file
            body = FakeFile(id=-image.id, content=image.content, name=f"{image.id}.png")
            return FileBody(image.status, headers, body, 0, image.content.size,
                            announce_length=image.announce_length)
        return Reply(200, image.data, headers)

    def _file(self, request: Request, file_id: int) -> Reply | FileBody:
        f = self.catalog.files.get(file_id)
        if not self.signer.is_valid(file_id, request.query):
            return plain(403, "SignatureDoesNotMatch")
        version = self.catalog.versions.get(f.version_id or -1) if f else None
        if f is None or version is None or version.model_id in self.faults.removed:
            return plain(404, "NoSuchKey")
        served_name = self.faults.served_names.get(f.id, f.name or "model.bin")
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Disposition": content_disposition(served_name),
            "Accept-Ranges": "bytes",
            "ETag": f'"{f.id}-{f.size}"',
        }
        start, end = 0, f.size
        status = 200
        range_header = request.headers.get("Range")
        if range_header:
            parsed = _RANGE.fullmatch(range_header.strip())
            if parsed and parsed.group(1):  # "bytes=N-" or "bytes=N-M"
                start = int(parsed.group(1))
                if parsed.group(2):
                    end = min(f.size, int(parsed.group(2)) + 1)
                if start >= f.size or start >= end:
                    return plain(416, "InvalidRange", **{"Content-Range": f"bytes */{f.size}"})
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{f.size}"
            elif parsed and parsed.group(2):  # suffix form "bytes=-N"
                start = max(0, f.size - int(parsed.group(2)))
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{f.size}"
        return FileBody(status, headers, f, start, end)


class BodyStreamer:
    """Writes a FileBody to a socket, applying the download faults (throttle, cut, stall)."""

    SEND_CHUNK = 256 * 1024

    def __init__(self, faults: FaultBook, stopping: threading.Event) -> None:
        self.faults = faults
        self.stopping = stopping

    def announced_length(self, body: FileBody, fault: CountedFault | None) -> int:
        length = body.end - body.start
        if fault is not None and fault.kind == "wrong_length":
            return max(0, length + int(fault.amount))
        return length

    def stream(self, sock: socket.socket, body: FileBody, fault: CountedFault | None) -> bool:
        """Send the bytes; False means the connection must be closed afterwards."""
        end = body.end
        keep_alive = True
        if fault is not None and fault.kind == "stall":
            self.stopping.wait(fault.amount)
            return False
        if fault is not None and fault.kind in ("truncate", "reset"):
            end = min(end, body.start + int(fault.amount))
            keep_alive = False
        if fault is not None and fault.kind == "wrong_length":
            end = min(end, body.start + self.announced_length(body, fault))
            keep_alive = False
        rate = self.faults.throttle_bps
        path = body.file.content.path
        if rate is None and path is not None:
            with path.open("rb") as fh:
                body.sent += sock.sendfile(fh, body.start, end - body.start)
            return keep_alive
        self._send_chunks(sock, body, end, rate)
        return keep_alive

    def _send_chunks(self, sock: socket.socket, body: FileBody, end: int, rate: int | None) -> None:
        chunk = self.SEND_CHUNK if rate is None else max(1, min(self.SEND_CHUNK, rate // 20))
        started = time.monotonic()
        sent = 0
        for block in body.file.content.iter_range(body.start, end, chunk):
            if self.stopping.is_set():
                return
            sock.sendall(block)
            sent += len(block)
            body.sent += len(block)
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    self.stopping.wait(ahead)
