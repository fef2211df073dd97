"""The Civitai HTTP client: auth, retries with backoff and typed, readable errors.

Everything that talks to civitai.com goes through :class:`CivitaiClient`. It knows three
things the rest of the app should not have to:

* the API key goes to the API host only, never to the storage host a download redirects
  to, and never into a message, a log line or a stored URL;
* which failures are worth trying again (no answer, 5xx, 429) and how long to wait;
* how to turn a status code and Civitai's error body into one sentence a person can act on.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import logging
import os
import random
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
import requests.certs
import urllib3
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies

from civdesk import __version__
from civdesk.core.civitai.errors import (
    KEY_PAGE,
    Archived,
    AuthRequired,
    CivitaiError,
    EarlyAccess,
    Forbidden,
    KeyRefused,
    MalformedResponse,
    NetworkError,
    NotFound,
    RateLimited,
    ServerError,
)
from civdesk.core.civitai.governor import Governors, RatePolicy, SleepClock
from civdesk.core.civitai.schema import Model, ModelVersion, SearchPage, SearchQuery
from civdesk.core.downloads.filenames import name_from_content_disposition
from civdesk.core.errors import Cancelled
from civdesk.core.hashing import CancelFlag
from civdesk.core.images import MAX_IMAGE_BYTES, check_image, read_capped, too_large
from civdesk.core.secret_text import clean_api_key

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://civitai.com"
DEFAULT_USER_AGENT = f"civdesk/{__version__} (+https://github.com/civdesk/civdesk)"
#: The API caps both `/models?ids=` pages and bulk hash lookups at 100 entries.
BATCH_SIZE = 100
#: ``POST /model-versions/by-hash/ids`` answers which of up to 10,000 SHA256 it knows.
IDS_BATCH_SIZE = 10_000
SHA256_HEX = re.compile(r"^[0-9A-Fa-f]{64}$")
#: How long a request may wait out rate limiting before it fails (background work pauses
#: and resumes instead of failing; a person waiting on a page gets less).
RATE_LIMIT_PATIENCE = 900.0
#: Connect, headers and body of one attempt together: a server that drips bytes slower
#: than the read timeout cannot hold a thread forever.
REQUEST_DEADLINE = 120.0
#: The most an API answer may hold once decoded: a page of 100 models with their versions,
#: files and images is a few MB; more is a fault (or a compression bomb), never data.
MAX_ANSWER_BYTES = 64 << 20

Sleep = Callable[[float], None]


def redact_url(url: str) -> str:
    """``url`` without a ``token=`` query parameter, fit for logs and stored records."""
    parts = urlsplit(url)
    if "token" not in parts.query.lower():
        return url
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() != "token"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _short_date(iso: str | None) -> str | None:
    """``2026-12-31T00:00:00.000Z`` → ``2026-12-31`` (the time of day is noise to a person)."""
    if not iso:
        return None
    return iso[:10] if re.match(r"^\d{4}-\d{2}-\d{2}", iso) else iso


def _network_reason(exc: BaseException) -> str:
    """The short cause of a connection failure ("Connection refused", "timed out")."""
    if isinstance(exc, requests.Timeout):
        return "the connection timed out"
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return str(current.strerror)
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException):
                current = arg
                break
        else:
            current = current.__cause__ or current.__context__
    # Fall back to the innermost "[Errno N] text" of requests' long message.
    match = re.findall(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
    if match:
        return match[-1].strip()
    if "Name or service not known" in str(exc) or "getaddrinfo" in str(exc):
        return "the host name could not be resolved"
    return type(exc).__name__


#: Errors that mean there is no network path at all: retrying will not help.
_NO_ROUTE = {errno.ENETUNREACH, errno.EHOSTUNREACH}


def _offline_reason(exc: BaseException) -> str | None:
    """Why ``exc`` means no network at all (the name does not resolve, no route), or None
    for a failure worth trying again (a timeout, a reset, a refused connection)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (socket.gaierror, urllib3.exceptions.NameResolutionError)):
            return "the host name could not be resolved"
        if isinstance(current, OSError) and current.errno in _NO_ROUTE:
            return str(current.strerror or "no route to the host")
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None),
                  *getattr(current, "args", ())]
        todo.extend(e for e in linked if isinstance(e, BaseException))
    return None


@dataclass(frozen=True)
class _Body:
    """Civitai's error body in whatever shape it came: ``error``, ``message``, ``deadline``."""

    error: str | None = None
    message: str | None = None
    deadline: str | None = None

    @classmethod
    def of(cls, response: requests.Response) -> _Body:
        try:
            data = json.loads(response.content[:65536] or b"null")
        except (ValueError, UnicodeDecodeError):
            return cls()
        if not isinstance(data, Mapping):
            return cls()
        error = data.get("error")
        message = data.get("message")
        deadline = data.get("deadline")
        return cls(
            error=error if isinstance(error, str) else None,
            message=message if isinstance(message, str) else None,
            deadline=deadline if isinstance(deadline, str) else None,
        )

    @property
    def text(self) -> str | None:
        """The most specific human sentence of the body."""
        return self.message or self.error


class DownloadResponse:
    """The streamed body of one file, already past the redirect, ready to be written.

    ``start`` is the byte offset the body begins at: the requested offset when the server
    honoured Range (206), 0 when it ignored it (200). ``total_size`` is the size of the
    whole file when the server told it. ``body_size`` is how many bytes this body should
    carry, so a short read can be told from a complete one.
    """

    def __init__(
        self,
        response: requests.Response | None,
        *,
        filename: str | None,
        total_size: int | None,
        start: int,
        body_size: int | None,
        url: str,
    ) -> None:
        self._response = response
        self.filename = filename
        self.total_size = total_size
        self.start = start
        self.body_size = body_size
        self.url = redact_url(url)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` with the next bytes of the body; 0 at its end.

        Bytes that arrived before a connection broke are still returned; the break itself
        is raised on the next call as :class:`NetworkError` (transient), so a caller that
        keeps what it got can resume with Range without losing a byte.
        """
        if self._response is None:
            return 0
        try:
            return self._readinto(buffer)
        except Exception as exc:
            # http.client, urllib3 and requests each raise their own types here (IncompleteRead,
            # ProtocolError, ReadTimeoutError…): the net is wide, the cause stays on the chain.
            host = urlsplit(self.url).hostname or "?"
            raise NetworkError(
                f"The download from {host} was interrupted ({_network_reason(exc)}); "
                "it will resume from where it stopped",
                url=self.url,
            ) from exc

    def _readinto(self, buffer: bytearray | memoryview) -> int:
        assert self._response is not None
        raw = self._response.raw
        fp = getattr(raw, "_fp", None)
        if isinstance(fp, http.client.HTTPResponse) and not raw.headers.get("Content-Encoding"):
            # Straight from http.client into our buffer: no intermediate copy, and unlike
            # urllib3's read(amt), a short body gives its bytes before the IncompleteRead.
            # One call: the buffered socket already loops until the buffer is full.
            return fp.readinto(memoryview(buffer))
        # Any other transport (or an encoded body): urllib3's public, partial-read API.
        data = raw.read1(len(buffer), decode_content=True)
        buffer[: len(data)] = data
        return len(data)

    def iter_chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the body in chunks of at most ``size`` bytes (see :meth:`readinto`)."""
        buffer = bytearray(size)
        while n := self.readinto(buffer):
            yield bytes(buffer[:n])

    def close(self) -> None:
        if self._response is not None:
            self._response.close()

    def __enter__(self) -> DownloadResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Session(requests.Session):
    """A ``requests.Session`` that reads the proxy and CA-bundle settings of the environment
    once per host instead of on every request.

    requests scans the whole environment twice per request for them (~30% of the client's
    time for a small reply): a first scan fetches thousands of previews. A change to the
    environment after the first request to a host is not seen (make a new client).
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], tuple[dict[str, str], str | None]] = {}

    def environment_for(self, url: str) -> tuple[dict[str, str], str | None]:
        """The environment's proxies for ``url``'s host, and its CA bundle (if any)."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        found = self._environment.get(key)
        if found is None:
            proxies: dict[str, str] = get_environ_proxies(url) if self.trust_env else {}
            ca_bundle = (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                         if self.trust_env else None)
            found = self._environment[key] = (proxies, ca_bundle)
        return found

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        if not self.trust_env or (proxies and "no_proxy" in proxies):
            return super().merge_environment_settings(
                url, proxies, stream, verify, cert)
        env_proxies, ca_bundle = self.environment_for(url)
        proxies = dict(proxies or {})
        for scheme, proxy in env_proxies.items():
            proxies.setdefault(scheme, proxy)
        if (verify is True or verify is None) and ca_bundle:
            verify = ca_bundle
        return {
            "proxies": merge_setting(proxies, self.proxies),
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }


class CivitaiClient:
    """A Civitai API client on one :class:`requests.Session`.

    ``sleep`` and the backoff figures are parameters so tests can retry without waiting.
    The client is safe to use from one thread at a time; give each worker its own
    (:class:`civdesk.core.civitai.connections.Connections` does).

    ``governors`` paces requests per host (see :mod:`civdesk.core.civitai.governor`):
    clients that share it slow down together on a 429. Without one the client (and its
    clones) get their own, on ``backoff``/``max_backoff``. A 429 is retried while the
    waiting stays within ``rate_limit_patience`` seconds (at least ``max_retries`` times;
    ``max_retries=0`` never retries); other failures ``max_retries`` times.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        timeout: tuple[float, float] = (10, 60),
        max_retries: int = 4,
        backoff: float = RatePolicy.base,
        max_backoff: float = RatePolicy.ceiling,
        max_retry_after: float = RatePolicy.max_retry_after,
        user_agent: str = DEFAULT_USER_AGENT,
        sleep: Sleep = time.sleep,
        session: requests.Session | None = None,
        governors: Governors | None = None,
        rate_limit_patience: float = RATE_LIMIT_PATIENCE,
        deadline: float = REQUEST_DEADLINE,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.rate_limit_patience = rate_limit_patience
        self.deadline = deadline
        self.max_answer_bytes = max_answer_bytes
        if governors is None:
            policy = RatePolicy(base=backoff, ceiling=max_backoff,
                                max_retry_after=max_retry_after)
            if sleep is time.sleep:
                governors = Governors(policy)
            else:  # a test's sleep: the pauses it "sleeps" pass on the governor's clock too
                clock = SleepClock(sleep)
                governors, sleep = Governors(policy, clock=clock.now), clock.sleep
        self.governors = governors
        self.sleep = sleep
        self.user_agent = user_agent
        self.session = session or _Session()
        self.session.headers["User-Agent"] = user_agent
        self.session.headers["Accept"] = "application/json"
        self._image_pool: urllib3.PoolManager | None = None  # see _fetch_image_direct
        # Set once the bulk by-hash route answered 404/405: per-hash GETs from then on.
        self._bulk_hash_unsupported = False
        self._hash_ids_unsupported = False  # the same for by-hash/ids
        #: When set (a cancelled scan's), a failed request is not tried again: a server that
        #: hangs would otherwise hold the thread for every retry's timeout.
        self.stop: CancelFlag | None = None

    @property
    def api_key(self) -> str | None:
        return self._api_key

    @api_key.setter
    def api_key(self, value: str | None) -> None:
        # The one gate every key passes before it reaches a header (and the redaction list).
        self._api_key = clean_api_key(value)

    def __repr__(self) -> str:
        # Never the key itself; only whether there is one.
        return f"CivitaiClient({self.base_url!r}, api_key={'set' if self.api_key else None})"

    def clone(self) -> CivitaiClient:
        """A client with the same host, key and retry policy on its own session.

        For another thread: a ``requests.Session`` must not be shared between threads.
        """
        return CivitaiClient(
            self.base_url, self.api_key, timeout=self.timeout, max_retries=self.max_retries,
            backoff=self.backoff, max_backoff=self.max_backoff,
            max_retry_after=self.max_retry_after, user_agent=self.user_agent, sleep=self.sleep,
            governors=self.governors, rate_limit_patience=self.rate_limit_patience,
            deadline=self.deadline,
        )

    @property
    def api_host(self) -> str:
        return urlsplit(self.base_url).netloc

    def close(self) -> None:
        self.session.close()
        if self._image_pool is not None:
            self._image_pool.clear()
            self._image_pool = None

    # -- endpoints ------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> SearchPage:
        """One page of ``GET /api/v1/models`` for ``query``; follow ``next_cursor`` for more."""
        data = self._get_json("/api/v1/models", params=query.params(), what="The model search")
        return self._parse(SearchPage.from_json, data, "GET /api/v1/models")

    def get_model(self, model_id: int) -> Model:
        path = f"/api/v1/models/{int(model_id)}"
        data = self._get_json(path, what=f"Model {model_id}")
        return self._parse(Model.from_json, data, f"GET {path}")

    def get_models(self, model_ids: Iterable[int]) -> list[Model]:
        """The models with these ids, fetched 100 at a time; unknown ids are left out."""
        ids = list(dict.fromkeys(int(i) for i in model_ids))
        models: list[Model] = []
        for chunk in _chunks(ids, BATCH_SIZE):
            params: list[tuple[str, str]] = [
                ("ids", ",".join(map(str, chunk))),
                ("limit", str(BATCH_SIZE)),
                # Without it the API hides mature models, which a library may well hold.
                ("nsfw", "true"),
            ]
            cursor: str | None = None
            seen_cursors: set[str] = set()
            while True:
                page_params = [*params, ("cursor", cursor)] if cursor else params
                data = self._get_json("/api/v1/models", params=page_params, what="The models")
                page = self._parse(SearchPage.from_json, data, "GET /api/v1/models?ids=")
                models.extend(page.items)
                cursor = page.next_cursor
                # A server that repeats a cursor would loop forever; stop instead.
                if not cursor or cursor in seen_cursors or not page.items:
                    break
                seen_cursors.add(cursor)
        return models

    def get_version(self, version_id: int) -> ModelVersion:
        path = f"/api/v1/model-versions/{int(version_id)}"
        data = self._get_json(path, what=f"Model version {version_id}")
        return self._parse(ModelVersion.from_json, data, f"GET {path}")

    def version_by_hash(self, digest: str) -> ModelVersion:
        """The version holding a file with this hash (any kind); NotFound when unknown."""
        digest = digest.strip().upper()
        if not re.fullmatch(r"[0-9A-F]{8,64}", digest):
            raise ValueError(f"Not a hex hash: {digest[:70]!r}")
        path = f"/api/v1/model-versions/by-hash/{digest}"
        data = self._get_json(path, what=f"A file with hash {digest[:12]}")
        return self._parse(ModelVersion.from_json, data, "GET /api/v1/model-versions/by-hash")

    def versions_by_sha256(self, digests: Iterable[str]) -> dict[str, ModelVersion]:
        """UPPER sha256 → version for every digest Civitai knows; unknown ones are absent."""
        wanted = list(dict.fromkeys(d.strip().upper() for d in digests))
        bad = [d for d in wanted if not SHA256_HEX.match(d)]
        if bad:
            raise ValueError(f"Not a full SHA256: {bad[0][:70]!r}")
        found: dict[str, ModelVersion] = {}
        for chunk in _chunks(wanted, BATCH_SIZE):
            if not self._bulk_hash_unsupported:
                bulk = self._versions_by_sha256_bulk(chunk)
                if bulk is not None:
                    found.update(bulk)
                    continue
                self._bulk_hash_unsupported = True
                log.info("Bulk hash lookup unsupported by %s; using one request per hash",
                         self.api_host)
            for digest in chunk:
                with contextlib.suppress(NotFound):
                    found[digest] = self.version_by_hash(digest)
        return found

    def known_sha256(self, digests: Iterable[str]) -> dict[str, int] | None:
        """UPPER sha256 → version id for the digests Civitai knows, 10,000 per request
        (a few bytes per hash: a library of mostly unknown files costs a request or two);
        None when the server has no such route."""
        wanted = list(dict.fromkeys(d.strip().upper() for d in digests))
        if self._hash_ids_unsupported or any(not SHA256_HEX.match(d) for d in wanted):
            return None
        known: dict[str, int] = {}
        for chunk in _chunks(wanted, IDS_BATCH_SIZE):
            data = self._post_hashes("/api/v1/model-versions/by-hash/ids", chunk)
            if data is None:
                self._hash_ids_unsupported = True
                return None
            asked = set(chunk)
            for item in data:
                if not isinstance(item, Mapping):
                    continue
                digest, version_id = item.get("hash"), item.get("modelVersionId")
                if (isinstance(digest, str) and digest.upper() in asked
                        and isinstance(version_id, int) and not isinstance(version_id, bool)):
                    known[digest.upper()] = version_id
        return known

    def _versions_by_sha256_bulk(self, chunk: list[str]) -> dict[str, ModelVersion] | None:
        """One bulk POST; None when the server has no such route (404/405)."""
        endpoint = "POST /api/v1/model-versions/by-hash"
        data = self._post_hashes("/api/v1/model-versions/by-hash", chunk)
        if data is None:
            return None
        wanted = set(chunk)
        out: dict[str, ModelVersion] = {}
        for i, item in enumerate(data):
            version = self._parse(ModelVersion.from_json, item, endpoint, f"[{i}]")
            # The reply doesn't say which digest matched which version: ask the files.
            for file in version.files:
                if file.sha256 in wanted:
                    out[file.sha256] = version
        return out

    def _post_hashes(self, path: str, chunk: list[str]) -> list[Any] | None:
        """The list a bulk hash route answers for ``chunk``; None when the server has no
        such route (404/405)."""
        endpoint = f"POST {path}"
        response = self._send("POST", self._api_url(path), json_body=chunk)
        if response.status_code in (404, 405):
            return None
        data = self._json_or_raise(response, endpoint, what="The hash lookup")
        if not isinstance(data, list):
            raise MalformedResponse(
                f"Civitai sent an unexpected answer for {endpoint}: expected a list, "
                f"got {type(data).__name__}", url=response.url)
        return data

    def check_key(self) -> bool:
        """Whether the API key is accepted.

        ``/models?favorites=true`` answers 401 unless a valid key comes with it, and costs
        one tiny page; ``/me`` would do too but is not on every deployment.
        """
        if not self.api_key:
            return False
        response = self._send("GET", self._api_url("/api/v1/models"),
                              params=[("favorites", "true"), ("limit", "1")])
        if response.status_code in (401, 403):
            return False
        if response.ok:
            return True
        raise self._error_for(response, what="The API key check")

    def open_download(
        self, version_id: int, file_id: int | None = None, start: int = 0
    ) -> DownloadResponse:
        """Open the file of a version for streaming, from byte ``start`` on.

        The API host answers a 307 to a signed storage URL. That second request carries
        no Authorization header: the key is for Civitai, not for its storage provider.
        """
        params = [("fileId", str(int(file_id)))] if file_id is not None else []
        url = self._api_url(f"/api/download/models/{int(version_id)}")
        what = f"The file of model version {version_id}"
        # Content-Type makes Civitai answer JSON errors instead of redirecting to a login page.
        response = self._send("GET", url, params=params, allow_redirects=False, stream=True,
                              headers={"Content-Type": "application/json"})
        if response.is_redirect or response.status_code in (301, 302, 303, 307, 308):
            location = response.headers.get("Location")
            response.close()
            if not location:
                raise MalformedResponse(
                    f"Civitai sent an unexpected answer for GET /api/download/models/"
                    f"{version_id}: a redirect without Location", status=response.status_code)
            storage_url = urljoin(response.url, location)
            scheme = urlsplit(storage_url).scheme.lower()
            if scheme not in ("http", "https"):
                # file:, ftp:, javascript: … never fetched: only the web holds Civitai's files.
                raise MalformedResponse(
                    f"Civitai sent an unexpected answer for GET /api/download/models/"
                    f"{version_id}: a redirect to a non-web address ({scheme or 'no'} scheme)",
                    status=response.status_code)
            if "/login" in urlsplit(storage_url).path:
                raise self._auth_error(_Body(), download=True, url=response.url)
            return self._open_storage(storage_url, start, what)
        if response.ok:
            # Served directly by the API host: acceptable when it is the file, not a page.
            ctype = response.headers.get("Content-Type", "")
            if "json" in ctype or "html" in ctype:
                response.close()
                raise MalformedResponse(
                    f"Civitai sent an unexpected answer for GET /api/download/models/"
                    f"{version_id}: a {ctype.split(';')[0]} page instead of the file",
                    status=response.status_code)
            return self._download_response(response, 0)
        _keep_error_body(response)
        raise self._error_for(response, what=what, download=True)

    def _open_storage(self, url: str, start: int, what: str) -> DownloadResponse:
        # identity: a compressed body would make Content-Length and Range count other bytes.
        headers = {"Accept-Encoding": "identity"}
        if start > 0:
            headers["Range"] = f"bytes={start}-"
        response = self._send("GET", url, headers=headers, stream=True, authorize=False)
        if response.status_code == 416:
            # The part file already holds every byte (or more: then start over).
            total = _total_from_content_range(response.headers.get("Content-Range"))
            response.close()
            if total is not None and total == start:
                return DownloadResponse(None, filename=None, total_size=total, start=start,
                                        body_size=0, url=url)
            return self._open_storage(url, 0, what) if start > 0 else self._fail(response, what)
        if response.status_code == 206:
            return self._download_response(response, start)
        if response.ok:
            return self._download_response(response, 0)
        _keep_error_body(response)
        return self._fail(response, what)

    def _fail(self, response: requests.Response, what: str) -> DownloadResponse:
        raise self._error_for(response, what=what, download=True)

    def _download_response(self, response: requests.Response, start: int) -> DownloadResponse:
        length = _int_header(response.headers.get("Content-Length"))
        total: int | None = length
        body: int | None = length
        if response.status_code == 206:
            content_range = response.headers.get("Content-Range", "")
            match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", content_range)
            if not match:
                response.close()
                raise MalformedResponse(
                    f"Civitai's storage sent a partial answer without a valid Content-Range "
                    f"({content_range or 'none'})", status=206)
            start = int(match.group(1))
            total = None if match.group(3) == "*" else int(match.group(3))
            body = int(match.group(2)) - start + 1
        else:
            start = 0
        return DownloadResponse(
            response,
            filename=name_from_content_disposition(response.headers.get("Content-Disposition")),
            total_size=total,
            start=start,
            body_size=body,
            url=response.url,
        )

    def fetch_image(self, url: str, max_bytes: int = MAX_IMAGE_BYTES) -> tuple[bytes, str]:
        """The bytes and content type of a preview image (no key: images are public).

        Streamed and given up (:class:`ImageRejected`) as soon as it passes ``max_bytes``,
        or when its header claims absurd dimensions: a hostile or broken server cannot make
        the app hold a huge body, nor hand it a decompression bomb.
        """
        direct = self._fetch_image_direct(url, max_bytes)
        if direct is None:
            response = self._send("GET", url, authorize=False, stream=True,
                                  headers={"Accept": "image/*,*/*"})
            with contextlib.closing(response):
                if not response.ok:
                    _keep_error_body(response)
                    raise self._error_for(response, what="The preview image")
                _refuse_announced(response.headers.get("Content-Length"), max_bytes)
                data = read_capped(response.iter_content(_IMAGE_CHUNK), _PREVIEW, max_bytes)
                direct = data, response.headers.get("Content-Type", _OCTETS)
        check_image(direct[0], _PREVIEW)
        return direct

    def _fetch_image_direct(self, url: str, max_bytes: int) -> tuple[bytes, str] | None:
        """One plain GET through urllib3, without requests' per-request machinery.

        requests spends ~1 ms of CPU per call preparing and merging settings, and a first
        scan fetches thousands of previews. None when this does not apply (a proxy, a
        session given by the caller) or did not work at once: the caller then takes the
        full path, with its retries and error messages.
        """
        session = self.session
        if not isinstance(session, _Session) or session.verify is not True:
            return None
        proxies, ca_bundle = session.environment_for(url)
        if proxies:
            return None
        governor = self.governors(urlsplit(url).netloc)
        if governor.delay() > 0:
            return None  # paced: the full path waits its turn
        if self._image_pool is None:
            self._image_pool = urllib3.PoolManager(
                num_pools=4, maxsize=1, cert_reqs="CERT_REQUIRED",
                ca_certs=ca_bundle or requests.certs.where(),
                timeout=urllib3.Timeout(connect=self.timeout[0], read=self.timeout[1]),
                # Only redirects here; failures go the full way, which retries them.
                retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0,
                                      redirect=5, raise_on_redirect=True),
                headers={"User-Agent": self.user_agent, "Accept": "image/*,*/*"},
            )
        sent_at = governor.clock()
        try:
            response = self._image_pool.request("GET", url, preload_content=False)
        except (urllib3.exceptions.HTTPError, ValueError, OSError):
            return None
        complete = False
        try:
            if response.status == 429:
                governor.rate_limited(sent_at, _retry_after(response.headers.get("Retry-After")))
            if response.status != 200:
                return None
            governor.answered()
            _refuse_announced(response.headers.get("Content-Length"), max_bytes)
            data = read_capped(response.stream(_IMAGE_CHUNK), _PREVIEW, max_bytes)
            complete = True
        except (urllib3.exceptions.HTTPError, OSError):
            return None  # cut short: the full path tries again
        finally:
            if not complete:  # a body left unread: the connection cannot serve another
                response.close()
            response.release_conn()
        return data, response.headers.get("Content-Type", _OCTETS)

    # -- plumbing -------------------------------------------------------------------------

    def _api_url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _headers(
        self, url: str, extra: Mapping[str, str] | None, authorize: bool
    ) -> dict[str, str]:
        headers = dict(extra or {})
        # The key only ever goes to the host the user configured as Civitai.
        if authorize and self.api_key and urlsplit(url).netloc == self.api_host:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _get_json(self, path: str, *, params: Any = None, what: str) -> Any:
        response = self._send("GET", self._api_url(path), params=params)
        return self._json_or_raise(response, f"GET {path}", what=what)

    def _json_or_raise(self, response: requests.Response, endpoint: str, *, what: str) -> Any:
        if not response.ok:
            raise self._error_for(response, what=what)
        try:
            return response.json()
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python goes
            ctype = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise MalformedResponse(
                f"Civitai sent an unexpected answer for {endpoint}: not JSON ({ctype})",
                status=response.status_code, url=redact_url(response.url),
            ) from None

    @staticmethod
    def _parse(parse: Callable[..., Any], data: Any, endpoint: str, suffix: str = "") -> Any:
        try:
            return parse(data)
        except MalformedResponse as exc:
            raise MalformedResponse(
                f"Civitai sent an unexpected answer for {endpoint}{suffix}: {exc}"
            ) from None

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        allow_redirects: bool = True,
        stream: bool = False,
        authorize: bool = True,
    ) -> requests.Response:
        """One request with retries; returns the final response, whatever its status.

        Retried: no answer at all (but not "no network": a name that does not resolve, no
        route), 5xx and 429. Everything else is the caller's to judge. Every attempt waits
        its turn on the host's governor; a 429 slows down every client sharing it.
        """
        host = urlsplit(url).netloc
        governor = self.governors(host)
        attempt = 0
        rate_waited = 0.0
        while True:
            waited = governor.wait_turn(self.sleep, self._stopped)
            rate_waited += waited
            if (attempt or waited) and self._stopped():
                raise Cancelled("Civitai request")
            sent_at = governor.clock()
            try:
                response = self.session.request(
                    method, url, params=params, json=json_body,
                    headers=self._headers(url, headers, authorize),
                    allow_redirects=allow_redirects, stream=True, timeout=self.timeout,
                )
                if not stream:
                    self._read_body(response, time.monotonic() + self.deadline,
                                    self.max_answer_bytes)
            except requests.TooManyRedirects:
                raise MalformedResponse(
                    f"Civitai's server at {host} redirects in a loop; try again later",
                    url=redact_url(url)) from None
            except (requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL) as exc:
                raise MalformedResponse(
                    f"Civitai's server at {host} sent an address that cannot be fetched "
                    f"({type(exc).__name__})", url=redact_url(url)) from None
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                offline = _offline_reason(exc)
                if offline is not None:  # no network: trying again only makes the user wait
                    raise NetworkError(
                        f"Cannot reach Civitai at {host}: {offline}. Check your network "
                        "connection", url=redact_url(url)) from None
                reason = _network_reason(exc)
                if attempt >= self.max_retries:
                    raise NetworkError(
                        f"Cannot reach Civitai at {host}: {reason}. Check your network connection",
                        url=redact_url(url),
                    ) from None
                delay = self._backoff_delay(attempt)
                log.warning("%s %s failed (%s); retrying in %.1f s",
                            method, redact_url(url), reason, delay)
            else:
                status = response.status_code
                if status == 429:
                    pause = governor.rate_limited(
                        sent_at, _retry_after(response.headers.get("Retry-After")))
                    if not self._may_wait_out(attempt, pause, rate_waited + pause):
                        return response
                    log.warning("Civitai is rate limiting requests; retrying in %.0f s", pause)
                    response.close()
                    attempt += 1
                    continue  # the wait is the governor's, at the top of the loop
                governor.answered()
                if status < 500 or attempt >= self.max_retries:
                    return response
                delay = self._retry_delay(response, attempt)
                log.warning("%s %s answered %d; retrying in %.1f s",
                            method, redact_url(url), status, delay)
                response.close()
            if self._stopped():
                raise Cancelled("Civitai request")
            attempt += 1
            self.sleep(delay)

    def _stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _may_wait_out(self, attempt: int, pause: float, waited: float) -> bool:
        """Whether a 429 is tried again: while the waiting stays within the patience, or
        within the retry count for pauses this client would wait anyway."""
        if self.max_retries <= 0:
            return False
        if self.rate_limit_patience > 0 and waited <= self.rate_limit_patience:
            return True
        return attempt < self.max_retries and pause <= self.max_retry_after

    @staticmethod
    def _read_body(response: requests.Response, deadline: float, max_bytes: int) -> None:
        """Read the whole body, giving up (as a timeout) when ``deadline`` passes, and
        refusing it once it holds more than ``max_bytes`` decoded."""
        chunks: list[bytes] = []
        size = 0
        try:
            # read1: whatever has arrived, so a body that trickles in is timed as it comes.
            while chunk := response.raw.read1(_IMAGE_CHUNK, decode_content=True):
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    host = urlsplit(response.url).netloc
                    raise MalformedResponse(
                        f"Civitai's server at {host} sent an answer larger than "
                        f"{max_bytes >> 20} MB; try again later",
                        status=response.status_code, url=redact_url(response.url))
                if time.monotonic() > deadline:
                    raise requests.Timeout("the answer took longer than the request deadline")
        except urllib3.exceptions.ReadTimeoutError as exc:
            response.close()
            raise requests.Timeout(str(exc)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            response.close()
            raise requests.ConnectionError(exc) from exc
        except BaseException:
            response.close()
            raise
        response._content = b"".join(chunks)
        response._content_consumed = True

    def _backoff_delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter on the upper half: 1, 2, 4 … capped."""
        ceiling = min(self.max_backoff, self.backoff * (2 ** attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _retry_delay(self, response: requests.Response, attempt: int) -> float:
        retry_after = _retry_after(response.headers.get("Retry-After"))
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return self._backoff_delay(attempt)

    def _error_for(
        self, response: requests.Response, *, what: str, download: bool = False
    ) -> CivitaiError:
        status = response.status_code
        body = _Body.of(response)
        url = redact_url(response.url)
        if status == 401:
            return self._auth_error(body, download=download, url=url)
        if status == 403:
            if body.deadline or (body.error or "").lower() == "early access":
                date = _short_date(body.deadline)
                when = f"until {date}" if date else "for now"
                return EarlyAccess(
                    f"{what} is in early access {when}; it becomes downloadable then, "
                    "or unlock it on civitai.com", deadline=body.deadline, status=status, url=url)
            detail = f": {body.text}" if body.text and body.text != "Forbidden" else ""
            return Forbidden(f"Civitai refused access to {what.lower()} (403){detail}",
                             status=status, url=url)
        if status == 404:
            return NotFound(f"{what} not found on Civitai (removed or never published)",
                            status=status, url=url)
        if status == 410:
            return Archived("This model was archived on Civitai and can no longer be downloaded",
                            status=status, url=url)
        if status == 429:
            return RateLimited(
                "Civitai is rate limiting requests; wait a while and try again",
                retry_after=_retry_after(response.headers.get("Retry-After")),
                status=status, url=url)
        if status >= 500:
            return ServerError(f"Civitai is having trouble (HTTP {status}); try again later",
                               status=status, url=url)
        detail = f": {body.text}" if body.text else ""
        return CivitaiError(f"Civitai rejected the request for {what.lower()} (HTTP {status})"
                            f"{detail}", status=status, url=url)

    def _auth_error(self, body: _Body, *, download: bool, url: str | None) -> AuthRequired:
        message = body.message or ""
        if "disabled downloads" in message.lower():
            return AuthRequired(f"Civitai refused the download: {message}", status=401, url=url)
        if not self.api_key:
            text = ("Civitai refused the download: this file requires an API key — set your "
                    "Civitai API key in Settings" if download else
                    "Civitai requires an API key for this — set your Civitai API key in Settings")
            return AuthRequired(text, status=401, url=url)
        # The key was sent and still refused: it expired or was revoked, not "missing".
        return KeyRefused(
            f"Civitai refused the API key (401): it has probably expired or been revoked — "
            f"create a new one on {KEY_PAGE} and enter it in Settings", status=401, url=url)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


_IMAGE_CHUNK = 64 << 10
_ERROR_BODY_BYTES = 64 << 10  # all of an error body that is read (_Body.of looks at no more)


def _keep_error_body(response: requests.Response) -> None:
    """Keep the start of a streamed error body for its message, and close: a server must
    not make the app read a huge body because it called it an error."""
    try:
        body = response.raw.read(_ERROR_BODY_BYTES, decode_content=True)
    except (urllib3.exceptions.HTTPError, OSError, requests.RequestException):
        body = b""
    response.close()  # first: the rest unread, the connection is closed, not pooled
    response._content = body or b""  # what .content and .text give from now on
    response._content_consumed = True
_PREVIEW = "The preview image"
_OCTETS = "application/octet-stream"


def _refuse_announced(content_length: str | None, max_bytes: int) -> None:
    """Give up before reading a body whose announced length is over the limit."""
    if content_length and content_length.strip().isdigit() and int(content_length) > max_bytes:
        raise too_large(_PREVIEW, max_bytes)


def _total_from_content_range(value: str | None) -> int | None:
    match = re.search(r"/(\d+)\s*$", value or "")
    return int(match.group(1)) if match else None


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds; the HTTP-date form too. None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
