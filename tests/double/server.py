"""CivitaiDouble: a real HTTP stand-in for Civitai on loopback (an API host and a storage host).

Tests and benchmarks talk plain HTTP/1.1 to it; fault switches make the error paths testable.
``CivitaiDouble(two_sites=True)`` models Civitai since April 2026: the API host
(``base_url``) is civitai.com, which leaves mature models out, and a second API host
(``mature_url``) is civitai.red, which serves everything; both share the catalog and the
storage host. By default one API host serves everything and ``mature_url`` is ``base_url``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import secrets
import socket
import struct
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from requests.structures import CaseInsensitiveDict

from tests.double.api import ApiHost, Reply, Request, UrlSigner, json_reply
from tests.double.catalog import Catalog, FakeFile, FakeImage, FakeModel, FakeVersion
from tests.double.content import (
    BytesContent,
    Content,
    GeneratedContent,
    PathContent,
    generated_safetensors,
    make_safetensors,
)
from tests.double.faults import CountedFault, FaultBook
from tests.double.render import Renderer
from tests.double.storage import BodyStreamer, FileBody, StorageHost

MALFORMED_JSON = b'{"items": [{"id": 1, "name": "cut'


@dataclass(frozen=True)
class RecordedRequest:
    host: str  # "api" | "storage" | "mature" (the second API host of two_sites)
    method: str
    path: str
    query: dict[str, str]  # first value of each parameter
    headers: CaseInsensitiveDict  # type: ignore[type-arg]
    query_all: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""


class _Server(ThreadingHTTPServer):
    """Threaded server that remembers its open connections so stop() can cut them."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.open_sockets: set[socket.socket] = set()
        self._reset_sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._sockets_lock:
            self.open_sockets.discard(request)
            reset = request in self._reset_sockets
            self._reset_sockets.discard(request)
        if reset:
            # No shutdown() first: that would send a clean FIN before the RST.
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def reset_on_close(self, sock: socket.socket) -> None:
        """Abort this connection with a TCP RST (a crashed peer or a middlebox), not EOF."""
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._sockets_lock:
            self._reset_sockets.add(sock)

    def cut_connections(self) -> None:
        with self._sockets_lock:
            for sock in list(self.open_sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections end eventually
    # TCP_NODELAY: headers and body go out as two writes; with Nagle the body waited for the
    # client's delayed ACK, ~40 ms per keep-alive request.
    disable_nagle_algorithm = True
    host_label = "api"
    double: CivitaiDouble

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def _dispatch(self) -> None:
        try:
            self.double._serve(self)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug in the double: answer 500 so the test sees why
            traceback.print_exc()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.send_error(500, f"double crashed: {exc!r}")

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch


class CivitaiDouble:
    """A local Civitai: catalog building, fault switches and two HTTP listeners."""

    def __init__(self, api_key: str = "test-key", *, two_sites: bool = False) -> None:
        self.api_key = api_key
        self.two_sites = two_sites
        self._labels = ("api", "storage", "mature") if two_sites else ("api", "storage")
        self.catalog = Catalog()
        self.faults = FaultBook()
        self._signer = UrlSigner(secrets.token_bytes(16))
        self._requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._in_flight = dict.fromkeys(self._labels, 0)
        self._bytes_sent: dict[str, int] = {}  # streamed bodies: request path -> bytes sent
        # The most requests each host answered at once (since the last clear_requests).
        self.peak_concurrency = dict.fromkeys(self._labels, 0)
        self._stopping = threading.Event()
        self._streamer = BodyStreamer(self.faults, self._stopping)
        self._servers: dict[str, _Server] = {}
        self._threads: list[threading.Thread] = []
        self.base_url = ""
        self.mature_url = ""
        self.storage_url = ""
        self._renderer: Renderer | None = None
        self._apis: dict[str, ApiHost] = {}  # by host label
        self._storage = StorageHost(self.catalog, self.faults, self._signer)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> CivitaiDouble:
        for label in self._labels:
            handler = type(f"_{label.title()}Handler", (_Handler,), {"host_label": label})
            handler.double = self
            server = _Server(handler)
            self._servers[label] = server
            thread = threading.Thread(
                target=server.serve_forever,
                args=(0.05,),
                name=f"civitai-double-{label}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        urls = {label: f"http://127.0.0.1:{server.server_address[1]}"
                 for label, server in self._servers.items()}
        self.base_url, self.storage_url = urls["api"], urls["storage"]
        self.mature_url = urls.get("mature", self.base_url)
        self._renderer = Renderer(self.catalog, self.faults, self.base_url, self.storage_url)
        self._apis["api"] = ApiHost(self.catalog, self.faults, self._renderer, self._signer,
                                    self.api_key, self.storage_url, safe_only=self.two_sites)
        if self.two_sites:
            mature = Renderer(self.catalog, self.faults, self.mature_url, self.storage_url)
            self._apis["mature"] = ApiHost(self.catalog, self.faults, mature, self._signer,
                                           self.api_key, self.storage_url)
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes stalled and throttled bodies
        # Shut both listeners down at once: each shutdown() waits for a poll interval.
        stoppers = [threading.Thread(target=s.shutdown) for s in self._servers.values()]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self._servers.values():
            server.cut_connections()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> CivitaiDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- catalog ----------------------------------------------------------------------------

    def file(
        self,
        content: bytes | None = None,
        *,
        path: Path | str | None = None,
        size: int | None = None,
        name: str | None = None,
        type: str = "Model",
        primary: bool | None = None,
        format: str = "SafeTensor",
        fp: str | None = "fp16",
        size_label: str | None = None,
        pickle_scan: str = "Success",
        pickle_message: str = "No Pickle imports",
        virus_scan: str = "Success",
    ) -> FakeFile:
        """A file spec for add_version. Give at most one of content/path/size; with none, a
        small valid safetensors file unique to this file id. `name=None` means Civitai's
        naming (`<model>_<version>.safetensors`), fixed when the file joins a version.
        `primary=None` lets the version pick by Civitai's type preference. `pickle_scan`,
        `pickle_message` and `virus_scan` are what Civitai's scans say of it ("Danger")."""
        if sum(x is not None for x in (content, path, size)) > 1:
            raise ValueError("give only one of content, path, size")
        file_id = self.catalog.new_file_id()
        source: Content
        if content is not None:
            source = BytesContent(content)
        elif path is not None:
            source = PathContent(Path(path))
        elif size is not None:
            is_safetensors = format == "SafeTensor" and (name or ".safetensors").endswith(
                ".safetensors"
            )
            source = (
                generated_safetensors(size, seed=file_id)
                if is_safetensors
                else GeneratedContent(size, seed=file_id)
            )
        else:
            payload = random.Random(file_id).randbytes(4096)
            source = BytesContent(make_safetensors(payload, {"civdesk_double_file": str(file_id)}))
        return FakeFile(
            id=file_id,
            content=source,
            name=name,
            type=type,
            primary=primary,
            format=format,
            fp=fp,
            size_label=size_label,
            pickle_scan=pickle_scan,
            pickle_message=pickle_message,
            virus_scan=virus_scan,
        )

    def huge_image(
        self, size: int, *, announce_length: bool = True, status: int = 200
    ) -> FakeImage:
        """A "preview" of ``size`` bytes (a PNG header, then noise), streamed rather than
        held, with or without a Content-Length (``status``: sent as an error body instead);
        ``bytes_sent(image.path())`` tells how much of it a client read."""
        image = self.image("png")
        image.content = GeneratedContent(size, seed=image.id, prefix=image.data[:33])
        image.announce_length = announce_length
        image.status = status
        return image

    def image(self, kind: str = "png", nsfw_level: int = 1, served_as: str = "jpeg") -> FakeImage:
        """A preview; its URL ends in `.{served_as}` whatever the real encoding (as Civitai)."""
        image = self.catalog.new_image(kind, nsfw_level, served_as)
        image.meta = {"prompt": "a fox made of folded paper", "seed": image.id, "steps": 30}
        return image

    def add_model(
        self,
        name: str = "Paperfold Style",
        type: str = "LORA",
        nsfw: bool = False,
        tags: list[str] | None = None,
        creator: str = "civdesk-tester",
        description: str | None = "<p>A test model.</p>",
        *,
        poi: bool = False,
        download_count: int = 0,
        thumbs_up: int = 0,
    ) -> FakeModel:
        return self.catalog.add_model(
            name=name,
            type=type,
            nsfw=nsfw,
            tags=list(tags or []),
            creator=creator,
            description=description,
            poi=poi,
            download_count=download_count,
            thumbs_up=thumbs_up,
        )

    def add_version(
        self,
        model: FakeModel,
        name: str = "v1.0",
        base_model: str = "SD 1.5",
        trained_words: list[str] | None = None,
        files: list[FakeFile] | None = None,
        images: list[FakeImage] | None = None,
        published_at: dt.datetime | str | None = None,
        *,
        description: str | None = None,
        base_model_type: str | None = "Standard",
        nsfw_level: int = 1,
        download_count: int = 0,
    ) -> FakeVersion:
        """`files=None` gives one small safetensors file; `images=None` one PNG preview."""
        if isinstance(published_at, str):
            published_at = dt.datetime.fromisoformat(published_at.replace("Z", "+00:00"))
        return self.catalog.add_version(
            model,
            files=list(files) if files is not None else [self.file()],
            images=list(images) if images is not None else [self.image()],
            name=name,
            base_model=base_model,
            trained_words=list(trained_words or []),
            published_at=published_at,
            description=description,
            base_model_type=base_model_type,
            nsfw_level=nsfw_level,
            download_count=download_count,
        )

    def version_json(self, version: FakeVersion) -> dict[str, Any]:
        """Exactly what `/api/v1/model-versions/{id}` answers (and by-hash)."""
        return self._render().version(version)

    def model_json(self, model: FakeModel) -> dict[str, Any]:
        """Exactly what `/api/v1/models/{id}` answers (also the `/models` item form)."""
        return self._render().model(model)

    def download_url(self, version: FakeVersion, f: FakeFile | None = None) -> str:
        return self._render().download_url(version, f)

    def image_url(self, image: FakeImage, variant: str = "width=450") -> str:
        return self.storage_url + image.path(variant)

    def _render(self) -> Renderer:
        if self._renderer is None:
            raise RuntimeError("start() the double first: URLs depend on its ports")
        return self._renderer

    # -- fault switches (all undone by reset_faults) -----------------------------------------

    def reset_faults(self) -> None:
        self.faults.reset()

    def login_required(self, version: FakeVersion) -> None:
        self.faults.login_required.add(version.id)

    def early_access(
        self,
        version: FakeVersion,
        deadline: str = "2026-12-31T00:00:00.000Z",
        key_unlocks: bool = False,
    ) -> None:
        """Download answers 403 Early Access (even with a key unless `key_unlocks`)."""
        self.faults.early_access[version.id] = deadline
        if key_unlocks:
            self.faults.early_access_key_unlocks.add(version.id)

    def archive(self, model: FakeModel) -> None:
        """Section 1.5: `mode: Archived`, no files, no download URL; downloads answer 410."""
        self.faults.archived.add(model.id)

    def take_down(self, model: FakeModel) -> None:
        """`mode: TakenDown`: no files and no images either."""
        self.faults.taken_down.add(model.id)

    def unpublish(self, version: FakeVersion) -> None:
        """The version answers 404 and its model no longer lists it."""
        self.faults.unpublished.add(version.id)

    def gone_download(self, model: FakeModel) -> None:
        """Downloads answer 410 while the model's JSON (edge-cached) still lists its files."""
        self.faults.gone_downloads.add(model.id)

    def remove(self, model: FakeModel) -> None:
        self.faults.removed.add(model.id)

    def rate_limit(
        self, n: int = 1, retry_after: float | None = None, path_prefix: str | None = None
    ) -> None:
        self.faults.add(CountedFault("status", n, path_prefix, 429, retry_after))

    def fail(
        self,
        n: int = 1,
        status: int = 500,
        path_prefix: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.faults.add(CountedFault("status", n, path_prefix, status, retry_after))

    def malformed_json(self, n: int = 1, path_prefix: str | None = None) -> None:
        self.faults.add(CountedFault("malformed_json", n, path_prefix))

    def truncate_downloads(
        self, after_bytes: int, n: int = 1, path_prefix: str = "/files/"
    ) -> None:
        self.faults.add(CountedFault("truncate", n, path_prefix, amount=after_bytes))

    def wrong_content_length(
        self, delta: int = 100, n: int = 1, path_prefix: str = "/files/"
    ) -> None:
        """Announce size+delta; send at most that many bytes of the real body, then close."""
        self.faults.add(CountedFault("wrong_length", n, path_prefix, amount=delta))

    def reset_downloads(self, after_bytes: int, n: int = 1, path_prefix: str = "/files/") -> None:
        """Send `after_bytes` of the body, then abort the connection with a TCP reset."""
        self.faults.add(CountedFault("reset", n, path_prefix, amount=after_bytes))

    def redirect_download(self, version: FakeVersion, location: str) -> None:
        """The download endpoint answers 307 to `location` (any scheme) instead of storage."""
        self.faults.redirect_targets[version.id] = location

    def edit_json(self, path_prefix: str, edit: Callable[[Any], Any]) -> None:
        """Pass every successful JSON answer under `path_prefix` through `edit` (which may
        change the parsed value in place and return it): API drift, junk and hostile data."""
        self.faults.json_edits.append((path_prefix, edit))

    def replace_json(self, body: bytes, n: int = 1, path_prefix: str | None = None,
                     headers: dict[str, str] | None = None) -> None:
        """Send ``body`` (with ``headers``, e.g. a Content-Encoding) as the next successful
        JSON answers: an answer too large, nested too deep, or a compression bomb."""
        self.faults.add(CountedFault("json_body", n, path_prefix, body=body,
                                     headers=dict(headers or {})))

    def drip_json(self, seconds_per_byte: float, n: int = 1,
                  path_prefix: str | None = None) -> None:
        """Send the next JSON answers one byte every ``seconds_per_byte``: a server slow
        enough to outlast any whole-request deadline without ever tripping a read timeout."""
        self.faults.add(CountedFault("drip", n, path_prefix, amount=seconds_per_byte))

    def stall_downloads(self, seconds: float, n: int = 1, path_prefix: str = "/files/") -> None:
        """Send the headers, then nothing for `seconds`, then close."""
        self.faults.add(CountedFault("stall", n, path_prefix, amount=seconds))

    def throttle_downloads(self, bytes_per_second: int | None) -> None:
        self.faults.throttle_bps = bytes_per_second

    def api_latency(self, seconds: float) -> None:
        """Every API answer waits ``seconds`` first, as real Civitai's do from afar (requests
        in parallel wait in parallel); storage is not delayed."""
        self.faults.api_latency = seconds

    def storage_latency(self, seconds: float) -> None:
        """Every storage answer (an image, a file's first byte) waits ``seconds`` first, as
        a CDN's do from afar."""
        self.faults.storage_latency = seconds

    def disable_bulk_hash(self) -> None:
        self.faults.bulk_hash_disabled = True

    def redirect_loop(self, version: FakeVersion) -> None:
        self.faults.redirect_loops.add(version.id)

    def content_disposition(self, f: FakeFile, filename: str) -> None:
        """Serve `f` (redirect URL and Content-Disposition) under a hostile/odd filename."""
        self.faults.served_names[f.id] = filename

    # -- recorded traffic -------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._requests_lock:
            return list(self._requests)

    @property
    def storage_headers(self) -> list[CaseInsensitiveDict]:  # type: ignore[type-arg]
        return [r.headers for r in self.requests if r.host == "storage"]

    def bytes_sent(self, path: str) -> int:
        """The bytes of streamed bodies (files, big images) sent for ``path``, once every
        answer under way has ended (a client that gave up makes the server's send fail)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self._requests_lock:
                if not any(self._in_flight.values()):
                    return self._bytes_sent.get(path, 0)
            self._stopping.wait(0.01)
        raise TimeoutError("the double is still answering a request")

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()
            self.peak_concurrency = dict(self._in_flight)

    # -- serving (called from handler threads) -----------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        request = self._read_request(handler)
        label = handler.host_label
        fault = self.faults.take(("status",), request.path)
        if fault is not None:
            extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else {}
            message = "Too Many Requests" if fault.status == 429 else "Server error"
            self._send(handler, request, json_reply(fault.status, {"error": message}, **extra))
            return
        with self._requests_lock:
            self._in_flight[label] += 1
            self.peak_concurrency[label] = max(self.peak_concurrency[label],
                                               self._in_flight[label])
        try:
            self._answer(handler, request, label)
        finally:
            with self._requests_lock:
                self._in_flight[label] -= 1

    def _answer(self, handler: _Handler, request: Request, label: str) -> None:
        api = self._apis.get(label)
        latency = self.faults.api_latency if api is not None else self.faults.storage_latency
        if latency:
            self._stopping.wait(latency)
        if api is not None:
            self._send(handler, request, api.handle(request))
            return
        outcome = self._storage.handle(request)
        if isinstance(outcome, FileBody):
            self._send_file(handler, request, outcome)
        else:
            self._send(handler, request, outcome)

    def _read_request(self, handler: _Handler) -> Request:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        query = parse_qs(url.query, keep_blank_values=True)
        headers = CaseInsensitiveDict(handler.headers.items())
        with self._requests_lock:
            self._requests.append(
                RecordedRequest(
                    host=handler.host_label,
                    method=handler.command,
                    path=url.path,
                    query={k: v[0] for k, v in query.items()},
                    headers=headers,
                    query_all=query,
                    body=body,
                )
            )
        return Request(handler.command, url.path, query, headers, body)

    def _send(self, handler: _Handler, request: Request, reply: Reply) -> None:
        body = reply.body
        wants_broken = reply.is_json and reply.status == 200
        if wants_broken:
            for prefix, edit in list(self.faults.json_edits):
                if request.path.startswith(prefix):
                    body = json.dumps(edit(json.loads(body)), ensure_ascii=False).encode()
        if wants_broken and self.faults.take(("malformed_json",), request.path):
            body = MALFORMED_JSON
        headers = dict(reply.headers)
        replaced = wants_broken and self.faults.take(("json_body",), request.path)
        if replaced:
            body = replaced.body
            headers.update(replaced.headers)
        handler.send_response(reply.status)
        for name, value in headers.items():
            if name != "Content-Length":
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if request.method == "HEAD":
            return
        drip = wants_broken and self.faults.take(("drip",), request.path)
        if drip:  # a byte every `amount` seconds: each read is quick, the whole is not
            for i in range(len(body)):
                if self._stopping.wait(drip.amount):
                    return
                handler.wfile.write(body[i:i + 1])
                handler.wfile.flush()
            return
        handler.wfile.write(body)

    def _send_file(self, handler: _Handler, request: Request, body: FileBody) -> None:
        fault = self.faults.take(("truncate", "reset", "stall", "wrong_length"), request.path)
        handler.send_response(body.status)
        for name, value in body.headers.items():
            handler.send_header(name, value)
        if body.announce_length:
            handler.send_header("Content-Length",
                                str(self._streamer.announced_length(body, fault)))
        else:
            handler.close_connection = True
        handler.end_headers()
        if request.method == "HEAD":
            return
        try:
            keep_alive = self._streamer.stream(handler.connection, body, fault)
        finally:
            with self._requests_lock:
                self._bytes_sent[request.path] = self._bytes_sent.get(request.path, 0) + body.sent
        if not body.announce_length:
            _half_close(handler.connection)
        elif not keep_alive:
            handler.close_connection = True
            if fault is not None and fault.kind == "reset":
                assert isinstance(handler.server, _Server)
                handler.server.reset_on_close(handler.connection)
            else:
                _half_close(handler.connection)


def _half_close(sock: socket.socket) -> None:
    """Make the client see EOF now, even though fewer bytes came than announced."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
