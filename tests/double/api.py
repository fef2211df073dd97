"""The API host's endpoints: `/api/v1/...` and `/api/download/models/{versionId}`.

Each handler takes a parsed request and returns a `Reply`; the HTTP plumbing lives in server.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from tests.double.catalog import (
    BASE_MODEL_TYPES,
    BASE_MODELS,
    FILE_FORMATS,
    FILE_FPS,
    FILE_SIZES,
    FILE_TYPES,
    MODEL_TYPES,
    Catalog,
    FakeFile,
    FakeModel,
    FakeVersion,
)
from tests.double.faults import FaultBook
from tests.double.render import Renderer, select_file

JSON_TYPE = "application/json; charset=utf-8"
PUBLIC_CACHE = "public, s-maxage=300, stale-while-revalidate=150"
SORTS = (
    "Highest Rated",
    "Most Downloaded",
    "Most Liked",
    "Most Discussed",
    "Most Collected",
    "Most Images",
    "Newest",
    "Oldest",
)
PERIODS = ("AllTime", "Year", "Month", "Week", "Day")
PAGE_CAP = 1000
HASH_IDS_CAP = 10_000  # POST /model-versions/by-hash/ids takes this many hashes at most
LOGIN_REQUIRED_MESSAGE = "The creator of this asset requires you to be logged in to download it"
URL_LIFETIME_SECONDS = 86_400


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any  # case-insensitive mapping
    body: bytes

    def first(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def many(self, name: str) -> list[str]:
        """Repeatable or comma-separated parameters (`types=A&types=B` or `types=A,B`)."""
        return [part for value in self.query.get(name, []) for part in value.split(",") if part]

    def api_key(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return self.first("token")


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    is_json: bool = False


def json_reply(status: int, payload: object, **headers: str) -> Reply:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    all_headers = {"Content-Type": JSON_TYPE, "Access-Control-Allow-Origin": "*"}
    if status == 200:
        all_headers["Cache-Control"] = PUBLIC_CACHE
    all_headers.update(headers)
    return Reply(status, body, all_headers, is_json=True)


def error(status: int, text: str, /, **extra: object) -> Reply:
    return json_reply(status, {"error": text, **extra})


class BadRequest(Exception):
    """A query parameter failed validation: 400, as Zod would answer."""


class UrlSigner:
    """Makes and checks the pre-signed-looking storage URLs the download endpoint hands out."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _signature(self, file_id: int, date: str) -> str:
        message = f"{file_id}|{date}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def signed_path(self, f: FakeFile, served_name: str) -> str:
        date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        query = urlencode(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Credential": "DOUBLEKEY/auto/s3/aws4_request",
                "X-Amz-Date": date,
                "X-Amz-Expires": str(URL_LIFETIME_SECONDS),
                "X-Amz-SignedHeaders": "host",
                "X-Amz-Signature": self._signature(f.id, date),
            }
        )
        return f"/files/{f.id}/{quote(served_name, safe='')}?{query}"

    def is_valid(self, file_id: int, query: dict[str, list[str]]) -> bool:
        date = (query.get("X-Amz-Date") or [""])[0]
        signature = (query.get("X-Amz-Signature") or [""])[0]
        return hmac.compare_digest(signature, self._signature(file_id, date))


Handler = Callable[[Request, "re.Match[str]"], Reply]


class ApiHost:
    """Routes API-host requests to endpoint methods."""

    def __init__(
        self,
        catalog: Catalog,
        faults: FaultBook,
        renderer: Renderer,
        signer: UrlSigner,
        api_key: str,
        storage_url: str,
        *,
        safe_only: bool = False,
    ) -> None:
        self.catalog = catalog
        # civitai.com since April 2026: mature models are not there (404s, left out).
        self.safe_only = safe_only
        self.faults = faults
        self.render = renderer
        self.signer = signer
        self.api_key = api_key
        self.storage_url = storage_url
        # (pattern, {method: handler}); HEAD is answered like GET without the body.
        self.routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(r"/api/v1/models"), {"GET": self.list_models}),
            (re.compile(r"/api/v1/models/(\d+)"), {"GET": self.get_model}),
            (re.compile(r"/api/v1/model-versions/by-hash"), {"POST": self.bulk_by_hash}),
            (re.compile(r"/api/v1/model-versions/by-hash/ids"), {"POST": self.hash_ids}),
            (re.compile(r"/api/v1/model-versions/by-hash/([^/]+)"), {"GET": self.by_hash}),
            (re.compile(r"/api/v1/model-versions/(\d+)"), {"GET": self.get_version}),
            (re.compile(r"/api/v1/tags"), {"GET": self.list_tags}),
            (re.compile(r"/api/v1/enums"), {"GET": self.enums}),
            (re.compile(r"/api/v1/me"), {"GET": self.me}),
            (re.compile(r"/api/download/models/(\d+)"), {"GET": self.download}),
        ]

    def handle(self, request: Request) -> Reply:
        path = request.path.rstrip("/") or "/"
        for pattern, methods in self.routes:
            match = pattern.fullmatch(path)
            if not match:
                continue
            method = "GET" if request.method == "HEAD" and "GET" in methods else request.method
            handler = methods.get(method)
            if handler is None:
                allow = ", ".join(sorted(methods))
                return json_reply(405, {"error": "Method Not Allowed"}, Allow=allow)
            try:
                return handler(request, match)
            except BadRequest as exc:
                return error(400, str(exc))
        return error(404, "Not found")

    # -- helpers ----------------------------------------------------------------------------

    def has_valid_key(self, request: Request) -> bool:
        key = request.api_key()
        return key is not None and hmac.compare_digest(key, self.api_key)

    def hides(self, model: FakeModel) -> bool:
        """Whether this host leaves the model out: removed, or mature on the safe site."""
        return model.id in self.faults.removed or (self.safe_only and is_mature(model))

    def visible_model(self, model_id: int) -> FakeModel | None:
        model = self.catalog.models.get(model_id)
        return None if model is None or self.hides(model) else model

    def visible_version(self, version_id: int) -> FakeVersion | None:
        version = self.catalog.versions.get(version_id)
        if version is None or self.visible_model(version.model_id) is None:
            return None
        if self.safe_only and version.nsfw_level & ~SAFE_LEVELS:
            return None
        if version.id in self.faults.unpublished:
            return None
        return version

    # -- /models ----------------------------------------------------------------------------

    def list_models(self, request: Request, _: re.Match[str]) -> Reply:
        if (
            request.first("favorites") == "true" or request.first("hidden") == "true"
        ) and not self.has_valid_key(request):
            return error(401, "Unauthorized")
        query = ModelQuery.parse(request)
        if query.search is not None and request.first("page") is not None:
            return error(
                400, "Cannot use page param with query search. Use cursor-based pagination."
            )
        if query.page is not None and query.page * query.limit > PAGE_CAP:
            return error(429, "You've requested too many pages, please use cursors instead")

        models = query.sorted(m for m in list(self.catalog.models.values()) if query.keeps(m, self))
        start = query.offset
        page_items = models[start : start + query.limit]
        primary_only = request.first("primaryFileOnly") == "true"
        metadata: dict[str, Any] = {}
        has_more = start + query.limit < len(models)
        if has_more:
            next_offset = start + query.limit
            cursor = (
                str(next_offset)
                if query.search is not None
                else f"{next_offset}|{models[next_offset].id}"
            )
            metadata["nextCursor"] = cursor
            metadata["nextPage"] = self._next_page_url(request, query, cursor)
        if query.page is not None:
            metadata.update(
                currentPage=query.page,
                pageSize=query.limit,
                totalItems=len(models),
                totalPages=-(-len(models) // query.limit),
            )
        items = [self.render.model(m, primary_only) for m in page_items]
        return json_reply(200, {"items": items, "metadata": metadata})

    def _next_page_url(self, request: Request, query: ModelQuery, cursor: str) -> str:
        params = [(k, v) for k, values in request.query.items() for v in values]
        params = [(k, v) for k, v in params if k not in ("cursor", "page", "token")]
        if query.page is not None:
            params.append(("page", str(query.page + 1)))
        else:
            params.append(("cursor", cursor))
        return f"{self.render.base_url}/api/v1/models?{urlencode(params)}"

    def get_model(self, _: Request, match: re.Match[str]) -> Reply:
        model = self.visible_model(int(match.group(1)))
        if model is None:
            return error(404, f"No model with id {match.group(1)}")
        return json_reply(200, self.render.model(model))

    # -- /model-versions ---------------------------------------------------------------------

    def get_version(self, _: Request, match: re.Match[str]) -> Reply:
        version = self.visible_version(int(match.group(1)))
        if version is None:
            return error(404, "Model not found")
        return json_reply(200, self.render.version(version))

    def by_hash(self, _: Request, match: re.Match[str]) -> Reply:
        found = self.catalog.file_by_hash(match.group(1))
        version = self.visible_version(found.version_id) if found and found.version_id else None
        if version is None:
            return error(404, "Model not found")
        return json_reply(200, self.render.version(version))

    def bulk_by_hash(self, request: Request, _: re.Match[str]) -> Reply:
        if self.faults.bulk_hash_disabled:
            return error(404, "Not found")
        hashes = self._sha256_body(request, 100)
        seen: dict[int, FakeVersion] = {}
        for value in hashes:
            found = self.catalog.file_by_hash(value)
            version = self.visible_version(found.version_id) if found and found.version_id else None
            if version is not None and found is not None and found.sha256 == value.upper():
                seen.setdefault(version.id, version)
        return json_reply(200, [self.render.version(v) for v in seen.values()])

    def hash_ids(self, request: Request, _: re.Match[str]) -> Reply:
        """Which of up to 10,000 SHA256 hashes Civitai knows: ``[{modelVersionId, hash}]``."""
        if self.faults.bulk_hash_disabled:
            return error(404, "Not found")
        hashes = self._sha256_body(request, HASH_IDS_CAP)
        known = []
        for value in hashes:
            found = self.catalog.file_by_hash(value)
            version = self.visible_version(found.version_id) if found and found.version_id else None
            if version is not None and found is not None and found.sha256 == value.upper():
                known.append({"modelVersionId": version.id, "hash": found.sha256})
        return json_reply(200, known)

    @staticmethod
    def _sha256_body(request: Request, cap: int) -> list[str]:
        try:
            hashes = json.loads(request.body or b"null")
        except ValueError:
            raise BadRequest("Invalid JSON body") from None
        if not (isinstance(hashes, list) and len(hashes) <= cap
                and all(isinstance(h, str) and len(h) == 64 for h in hashes)):
            raise BadRequest(f"Body must be an array of at most {cap} SHA256 hashes")
        return hashes

    # -- /tags, /enums, /me ------------------------------------------------------------------

    def list_tags(self, request: Request, _: re.Match[str]) -> Reply:
        limit = _int_param(request, "limit", 20, 1, 200)
        page = _int_param(request, "page", 1, 1, None)
        needle = (request.first("query") or "").lower()
        counts: dict[str, int] = {}
        for model in list(self.catalog.models.values()):
            if not self.hides(model):
                for tag in model.tags:
                    counts[tag] = counts.get(tag, 0) + 1
        names = sorted((t for t in counts if needle in t.lower()), key=lambda t: (-counts[t], t))
        chunk = names[(page - 1) * limit : page * limit]
        items = [
            {
                "name": t,
                "link": f"{self.render.base_url}/api/v1/models?{urlencode({'tag': t})}",
                "modelCount": counts[t],
            }
            for t in chunk
        ]
        metadata: dict[str, Any] = {
            "totalItems": len(names),
            "currentPage": page,
            "pageSize": limit,
            "totalPages": -(-len(names) // limit),
        }
        if page * limit < len(names):
            params = {**{k: v[0] for k, v in request.query.items()}, "page": str(page + 1)}
            metadata["nextPage"] = f"{self.render.base_url}/api/v1/tags?{urlencode(params)}"
        return json_reply(200, {"items": items, "metadata": metadata})

    def enums(self, _: Request, __: re.Match[str]) -> Reply:
        return json_reply(
            200,
            {
                "ModelType": list(MODEL_TYPES),
                "ModelFileType": list(FILE_TYPES),
                "BaseModel": list(BASE_MODELS),
                "ActiveBaseModel": list(BASE_MODELS),
                "BaseModelType": list(BASE_MODEL_TYPES),
            },
        )

    def me(self, request: Request, _: re.Match[str]) -> Reply:
        if not self.has_valid_key(request):
            return error(401, "Unauthorized")
        return json_reply(200, {"id": 42, "username": "civdesk-tester", "tier": None})

    # -- /api/download/models/{versionId} ----------------------------------------------------

    def download(self, request: Request, match: re.Match[str]) -> Reply:
        version_id = int(match.group(1))
        version = self.visible_version(version_id)
        if version is None:
            return error(404, "Model not found")
        selectors = _download_selectors(request)
        if version.model_id in self.faults.archived | self.faults.gone_downloads:
            return error(410, "Model archived, not available for download")
        if version.id in self.faults.login_required and not self.has_valid_key(request):
            return error(401, "Unauthorized", message=LOGIN_REQUIRED_MESSAGE)
        deadline = self.faults.early_access.get(version.id)
        unlocked = version.id in self.faults.early_access_key_unlocks and self.has_valid_key(
            request
        )
        if deadline and not unlocked:
            return error(
                403,
                "Early Access",
                deadline=deadline,
                message="This asset is in Early Access. You can use Buzz access it now!",
            )
        if version.id in self.faults.redirect_targets:
            target = self.faults.redirect_targets[version.id]
            return Reply(307, b"", {"Location": target, "Content-Length": "0"})
        if version.id in self.faults.redirect_loops:
            own_url = self.render.base_url + request.path
            return Reply(307, b"", {"Location": own_url, "Content-Length": "0"})
        chosen = select_file(version, selectors)
        if chosen is None:
            return error(404, "File not found")
        served_name = self.faults.served_names.get(chosen.id, chosen.name or "model.bin")
        location = self.storage_url + self.signer.signed_path(chosen, served_name)
        return Reply(307, b"", {"Location": location, "Cache-Control": "no-store"})


#: nsfwLevel bits PG and PG-13; R (4) and above are mature (section 1.4).
SAFE_LEVELS = 1 | 2


def is_mature(model: FakeModel) -> bool:
    """A model flagged nsfw, or with a version rated R or above: civitai.red only."""
    return model.nsfw or any(v.nsfw_level & ~SAFE_LEVELS for v in model.versions)


class ModelQuery:
    """Validated `/models` parameters plus the filter and sort they describe."""

    def __init__(self) -> None:
        self.limit = 100
        self.page: int | None = None
        self.offset = 0
        self.search: str | None = None
        self.tag: str | None = None
        self.username: str | None = None
        self.types: list[str] = []
        self.base_models: list[str] = []
        self.ids: set[int] | None = None
        self.nsfw = False
        self.sort = "Highest Rated"

    @classmethod
    def parse(cls, request: Request) -> ModelQuery:
        q = cls()
        q.limit = _int_param(request, "limit", 100, 0, 100) or 100
        if request.first("page") is not None:
            q.page = _int_param(request, "page", 1, 1, None)
        q.search = request.first("query")
        q.tag = request.first("tag")
        q.username = request.first("username")
        q.types = request.many("types")
        if unknown := [t for t in q.types if t not in MODEL_TYPES]:
            raise BadRequest(f"Invalid enum value for types: {unknown[0]}")
        q.base_models = request.many("baseModels")
        if ids := request.many("ids"):
            if not all(i.isdigit() for i in ids):
                raise BadRequest("ids must be integers")
            q.ids = {int(i) for i in ids}
        nsfw = request.first("nsfw", "false")
        if nsfw not in ("true", "false"):
            raise BadRequest("nsfw must be true or false")
        q.nsfw = nsfw == "true"
        q.sort = request.first("sort", "Highest Rated") or "Highest Rated"
        if q.sort not in SORTS:
            raise BadRequest(f"Invalid enum value for sort: {q.sort}")
        if request.first("period", "AllTime") not in PERIODS:
            raise BadRequest("Invalid enum value for period")
        q.offset = q._offset(request)
        return q

    def _offset(self, request: Request) -> int:
        cursor = request.first("cursor")
        if cursor is not None:
            head = cursor.split("|", 1)[0]
            if not head.isdigit():
                raise BadRequest("Invalid cursor")
            return int(head)
        return (self.page - 1) * self.limit if self.page else 0

    def keeps(self, model: FakeModel, host: ApiHost) -> bool:
        if host.hides(model) or (model.nsfw and not self.nsfw):
            return False
        if self.search is not None and self.search.lower() not in model.name.lower():
            return False
        if self.tag is not None and self.tag.lower() not in (t.lower() for t in model.tags):
            return False
        if self.username is not None and self.username.lower() != model.creator.lower():
            return False
        if self.types and model.type not in self.types:
            return False
        if self.base_models and not {v.base_model for v in model.versions} & set(self.base_models):
            return False
        return self.ids is None or model.id in self.ids

    def sorted(self, models: Any) -> list[FakeModel]:
        keys: dict[str, Callable[[FakeModel], Any]] = {
            "Most Downloaded": lambda m: (m.download_count, m.id),
            "Most Discussed": lambda m: (m.comment_count, m.id),
            "Newest": lambda m: (m.latest_published or _EPOCH, m.id),
            "Oldest": lambda m: (m.latest_published or _EPOCH, m.id),
        }
        key = keys.get(self.sort, lambda m: (m.thumbs_up, m.id))
        return sorted(models, key=key, reverse=self.sort != "Oldest")


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.first(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if value < low or (high is not None and value > high):
        raise BadRequest(f"{name} out of range")
    return value


def _download_selectors(request: Request) -> dict[str, str]:
    allowed = {"type": FILE_TYPES, "format": FILE_FORMATS, "size": FILE_SIZES, "fp": FILE_FPS}
    selectors: dict[str, str] = {}
    file_id = request.first("fileId")
    if file_id is not None:
        if not file_id.isdigit():
            raise BadRequest("fileId must be an integer")
        return {"fileId": file_id}
    for name, values in allowed.items():
        value = request.first(name)
        if value is None:
            continue
        if value not in values:
            raise BadRequest(f"Invalid value for {name}: {value}")
        selectors[name] = value
    return selectors
