"""Plain dataclasses for what the Civitai API returns, and tolerant parsers for them.

The API drifts: unknown fields are ignored, missing optional fields get defaults, and a
field of the wrong type raises :class:`MalformedResponse` naming the field, so a broken
answer is a clear error instead of a ``KeyError`` deep in the app.  Each object keeps the
raw JSON it was parsed from (``raw``), because companion files store it verbatim.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from civdesk.core.civitai.errors import MalformedResponse
from civdesk.core.civitai.generation import GenerationParams

HASH_KINDS = ("SHA256", "AutoV1", "AutoV2", "AutoV3", "CRC32", "BLAKE3")
_HASH_KIND_BY_LOWER = {kind.lower(): kind for kind in HASH_KINDS}

# Civitai's order of preference when a version has several files and none is primary.
FILE_TYPE_PREFERENCE = (
    "Model",
    "Pruned Model",
    "Training Data",
    "Config",
    "Text Encoder",
    "VAE",
    "Negative",
    "Archive",
)

#: What Civitai's pickle and virus scans say of a file that failed them.
SCAN_DANGER = "Danger"

#: The key marking a version known only from a local companion file (Stability Matrix's
#: ``.cm-info.json``, say): ids, names, type, base model and trigger words, no files or
#: images. Civitai's own JSON never has it; it is replaced as soon as Civitai answers.
FROM_SIDECAR_KEY = "civdeskFromSidecar"

# NSFW level bit flags (an image normally carries one, a model an OR of its content).
NSFW_PG, NSFW_PG13, NSFW_R, NSFW_X, NSFW_XXX, NSFW_BLOCKED = 1, 2, 4, 8, 16, 32
SFW_LEVELS = NSFW_PG | NSFW_PG13


class _Reader:
    """Typed access to one JSON object, with the path of the field in every error."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise MalformedResponse(f"{where}: expected an object, got {type(data).__name__}")
        self.data = data
        self.where = where

    def _get(self, key: str, types: tuple[type, ...], required: bool, default: Any) -> Any:
        value = self.data.get(key)
        if value is None:
            if required:
                raise MalformedResponse(f"{self.where}.{key}: missing")
            return default
        # bool is an int in Python: never accept it where a number is wanted, and vice versa.
        if isinstance(value, bool) and bool not in types:
            raise MalformedResponse(f"{self.where}.{key}: expected {_names(types)}, got bool")
        if not isinstance(value, types):
            raise MalformedResponse(
                f"{self.where}.{key}: expected {_names(types)}, got {type(value).__name__}"
            )
        return value

    # Each accessor first tries the well-formed case with one exact type test (``type(x)
    # is int`` also refuses bool): a bulk lookup parses thousands of versions with a dozen
    # images each, and the general checks in _get cost twice as much per field.

    def integer(self, key: str, *, required: bool = False, default: int | None = None) -> Any:
        value = self.data.get(key)
        if type(value) is int:
            return value
        return self._get(key, (int,), required, default)

    def number(self, key: str, default: float | None = None) -> float | None:
        value = self.data.get(key)
        if type(value) is float:
            return value
        value = self._get(key, (int, float), False, default)
        return None if value is None else float(value)

    def text(self, key: str, *, required: bool = False, default: str | None = None) -> Any:
        value = self.data.get(key)
        if type(value) is str:
            return value
        return self._get(key, (str,), required, default)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key)
        if type(value) is bool:
            return value
        return bool(self._get(key, (bool,), False, default))

    def array(self, key: str) -> list[Any]:
        return list(self._get(key, (list,), False, []))

    def obj(self, key: str) -> Mapping[str, Any]:
        """The nested object, not copied: read it, never change it."""
        value = self.data.get(key)
        if type(value) is dict:
            return value
        return dict(self._get(key, (dict,), False, {}))

    def texts(self, key: str) -> list[str]:
        items = self.array(key)
        # Tags and trigger words are strings; an older shape sent {"name": ...} objects.
        out = []
        for i, item in enumerate(items):
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
                out.append(item["name"])
            else:
                raise MalformedResponse(f"{self.where}.{key}[{i}]: expected a string")
        return out


def early_access_until(ends_at: str | None, now: datetime | None = None) -> str | None:
    """The date (``YYYY-MM-DD``) until which a version is in early access, from Civitai's
    ``earlyAccessEndsAt``; None when it is not (no date, a past one, or a malformed one).

    Until then Civitai refuses the download to anyone who has not unlocked the version.
    """
    if not ends_at:
        return None
    try:
        ends = datetime.fromisoformat(ends_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if ends.tzinfo is None:
        ends = ends.replace(tzinfo=timezone.utc)
    if ends <= (now or datetime.now(timezone.utc)):
        return None
    return ends.date().isoformat()


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


def _each(items: list[Any], where: str, parse: Any) -> list[Any]:
    return [parse(item, f"{where}[{i}]") for i, item in enumerate(items)]


@dataclass(frozen=True)
class FileMetadata:
    format: str | None = None
    size: str | None = None
    fp: str | None = None
    quant_type: str | None = None


@dataclass(frozen=True)
class ModelFile:
    id: int
    name: str
    size_kb: float
    type: str = "Model"
    primary: bool = False
    metadata: FileMetadata = field(default_factory=FileMetadata)
    hashes: dict[str, str] = field(default_factory=dict)  # kind -> uppercase hex
    download_url: str | None = None
    pickle_scan_result: str | None = None
    virus_scan_result: str | None = None
    pickle_scan_message: str | None = None

    @property
    def danger(self) -> str | None:
        """Why Civitai's own scans flagged this file as dangerous, in words; None if not.

        A pickle (``.ckpt``, ``.pt``) can run code when a UI loads it: Civitai scans every
        upload for imports that do, and for viruses, and says ``Danger`` when it finds one.
        """
        if self.virus_scan_result == SCAN_DANGER:
            return f"Civitai's virus scan flagged {self.name} as dangerous"
        if self.pickle_scan_result == SCAN_DANGER:
            found = f": {self.pickle_scan_message}" if self.pickle_scan_message else ""
            return (f"Civitai's pickle scan found code in {self.name} that would run when it "
                    f"is loaded{found}")
        return None

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("SHA256")

    @property
    def size_bytes(self) -> int:
        return round(self.size_kb * 1024)

    @classmethod
    def from_json(cls, data: Any, where: str = "file") -> ModelFile:
        r = _Reader(data, where)
        meta = _Reader(r.obj("metadata"), f"{where}.metadata")
        hashes = {}
        for kind, value in r.obj("hashes").items():
            if isinstance(value, str) and value:
                # The scanner spells it Blake3; the API BLAKE3. Normalise the known kinds.
                hashes[_HASH_KIND_BY_LOWER.get(kind.lower(), kind)] = value.upper()
        return cls(
            id=r.integer("id", required=True),
            name=r.text("name", required=True),
            size_kb=r.number("sizeKB", 0.0) or 0.0,
            type=r.text("type", default="Model"),
            primary=r.flag("primary"),
            metadata=FileMetadata(
                # Legacy responses had a top-level "format".
                format=meta.text("format") or r.text("format"),
                size=meta.text("size"),
                fp=meta.text("fp"),
                quant_type=meta.text("quantType"),
            ),
            hashes=hashes,
            download_url=r.text("downloadUrl"),
            pickle_scan_result=r.text("pickleScanResult"),
            virus_scan_result=r.text("virusScanResult"),
            pickle_scan_message=r.text("pickleScanMessage"),
        )


@dataclass(frozen=True)
class Image:
    url: str
    nsfw_level: int = NSFW_PG
    width: int | None = None
    height: int | None = None
    type: str = "image"
    blurhash: str | None = None
    id: int | None = None
    #: Generation parameters: only the /model-versions form carries ``meta``; the /models
    #: form says whether there are any (``has_meta``; None: it does not say).
    meta: GenerationParams | None = None
    has_meta: bool | None = None

    @property
    def is_sfw(self) -> bool:
        return self.nsfw_level & ~SFW_LEVELS == 0

    @classmethod
    def from_json(cls, data: Any, where: str = "image") -> Image:
        r = _Reader(data, where)
        level = r.data.get("nsfwLevel")
        if not isinstance(level, int) or isinstance(level, bool):
            # Legacy: "nsfw" as a bool or None/Soft/Mature/X.
            legacy = r.data.get("nsfw")
            level = {True: NSFW_X, "Soft": NSFW_PG13, "Mature": NSFW_R, "X": NSFW_X}.get(
                legacy, NSFW_PG
            )
        return cls(
            url=r.text("url", required=True),
            nsfw_level=level,
            width=r.integer("width"),
            height=r.integer("height"),
            type=r.text("type", default="image"),
            blurhash=r.text("hash"),
            id=r.integer("id"),
            meta=GenerationParams.from_meta(r.data.get("meta")),
            has_meta=r.data.get("hasMeta") if type(r.data.get("hasMeta")) is bool else None,
        )


#: ``model.mode`` values of a model Civitai removed: archived (files and download dropped)
#: or taken down (images dropped too).
REMOVED_MODES = ("Archived", "TakenDown")


def is_removed_mode(mode: str | None) -> bool:
    """Whether a ``model.mode`` says Civitai removed the model."""
    return mode in REMOVED_MODES


@dataclass(frozen=True)
class ModelSummary:
    """The nested ``model`` object of a version: it has no id (use the version's modelId)."""

    name: str
    type: str
    nsfw: bool = False
    poi: bool = False
    mode: str | None = None  # "Archived" | "TakenDown"


@dataclass(frozen=True)
class ModelVersion:
    id: int
    model_id: int | None
    name: str
    base_model: str | None = None
    base_model_type: str | None = None
    description: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    published_at: str | None = None
    availability: str | None = None
    nsfw_level: int = 0
    trained_words: list[str] = field(default_factory=list)
    early_access_ends_at: str | None = None
    download_url: str | None = None
    files: list[ModelFile] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    model: ModelSummary | None = None  # present in the /model-versions form only
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def primary_file(self) -> ModelFile | None:
        """The file Civitai serves for a bare download URL."""
        for f in self.files:
            if f.primary:
                return f
        ranked = sorted(
            self.files,
            key=lambda f: (
                FILE_TYPE_PREFERENCE.index(f.type)
                if f.type in FILE_TYPE_PREFERENCE
                else len(FILE_TYPE_PREFERENCE)
            ),
        )
        return ranked[0] if ranked else None

    @property
    def from_sidecar_only(self) -> bool:
        """Known only from what a local companion file said (see :data:`FROM_SIDECAR_KEY`):
        never written to a ``.civitai.info``, and never stored over Civitai's own JSON."""
        return FROM_SIDECAR_KEY in self.raw

    def file_by_id(self, file_id: int) -> ModelFile | None:
        return next((f for f in self.files if f.id == file_id), None)

    def file_with_hash(self, digest: str) -> ModelFile | None:
        """The file of this version whose hash of any kind equals ``digest``."""
        digest = digest.upper()
        return next((f for f in self.files if digest in f.hashes.values()), None)

    def early_access_until(self, now: datetime | None = None) -> str | None:
        """See :func:`early_access_until`."""
        return early_access_until(self.early_access_ends_at, now)

    def early_access_text(self, now: datetime | None = None) -> str | None:
        """``early access until 2026-12-10`` while the version is in early access (Civitai
        refuses its download until then), ``early access`` when Civitai says so without a
        date, None when it is not."""
        until = self.early_access_until(now)
        if until is not None:
            return f"early access until {until}"
        if self.availability == "EarlyAccess" and not self.early_access_ends_at:
            return "early access"
        return None

    def preview_image(self, allow_nsfw: bool) -> Image | None:
        """The first still image the NSFW setting allows."""
        for image in self.images:
            if image.type == "image" and (allow_nsfw or image.is_sfw):
                return image
        return None

    @classmethod
    def from_json(cls, data: Any, where: str = "modelVersion") -> ModelVersion:
        r = _Reader(data, where)
        model = None
        if r.data.get("model") is not None:
            m = _Reader(r.data["model"], f"{where}.model")
            model = ModelSummary(
                name=m.text("name", default=""),
                type=m.text("type", default="Other"),
                nsfw=m.flag("nsfw"),
                poi=m.flag("poi"),
                mode=m.text("mode"),
            )
        return cls(
            id=r.integer("id", required=True),
            model_id=r.integer("modelId"),
            name=r.text("name", default=""),
            base_model=r.text("baseModel"),
            base_model_type=r.text("baseModelType"),
            description=r.text("description"),
            created_at=r.text("createdAt"),
            updated_at=r.text("updatedAt"),
            published_at=r.text("publishedAt"),
            availability=r.text("availability"),
            nsfw_level=r.integer("nsfwLevel", default=0),
            trained_words=r.texts("trainedWords"),
            early_access_ends_at=r.text("earlyAccessEndsAt"),
            download_url=r.text("downloadUrl"),
            files=_each(r.array("files"), f"{where}.files", ModelFile.from_json),
            images=_each(r.array("images"), f"{where}.images", Image.from_json),
            model=model,
            raw=dict(data),
        )


@dataclass(frozen=True)
class Model:
    id: int
    name: str
    type: str
    description: str | None = None
    nsfw: bool = False
    nsfw_level: int = 0
    poi: bool = False
    mode: str | None = None
    availability: str | None = None
    creator: str | None = None
    tags: list[str] = field(default_factory=list)
    download_count: int | None = None
    thumbs_up_count: int | None = None
    versions: list[ModelVersion] = field(default_factory=list)  # newest first
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def latest_version(self) -> ModelVersion | None:
        return self.versions[0] if self.versions else None

    def version_by_id(self, version_id: int) -> ModelVersion | None:
        return next((v for v in self.versions if v.id == version_id), None)

    def with_version_model(self, version: ModelVersion) -> ModelVersion:
        """A version of this model as the /model-versions form would give it."""
        from dataclasses import replace

        return replace(
            version,
            model_id=version.model_id or self.id,
            model=version.model
            or ModelSummary(
                name=self.name, type=self.type, nsfw=self.nsfw, poi=self.poi, mode=self.mode
            ),
        )

    @classmethod
    def from_json(cls, data: Any, where: str = "model") -> Model:
        r = _Reader(data, where)
        creator = r.data.get("creator")
        stats = _Reader(r.obj("stats"), f"{where}.stats")
        model_id = r.integer("id", required=True)
        versions = _each(r.array("modelVersions"), f"{where}.modelVersions", ModelVersion.from_json)
        return cls(
            id=model_id,
            name=r.text("name", required=True),
            type=r.text("type", default="Other"),
            description=r.text("description"),
            nsfw=r.flag("nsfw"),
            nsfw_level=r.integer("nsfwLevel", default=0),
            poi=r.flag("poi"),
            mode=r.text("mode"),
            availability=r.text("availability"),
            creator=creator.get("username") if isinstance(creator, Mapping) else None,
            tags=r.texts("tags"),
            download_count=stats.integer("downloadCount"),
            thumbs_up_count=stats.integer("thumbsUpCount"),
            versions=versions,
            raw=dict(data),
        )


@dataclass(frozen=True)
class SearchPage:
    items: list[Model]
    next_cursor: str | None = None
    next_page_url: str | None = None

    @property
    def has_more(self) -> bool:
        return bool(self.next_cursor)

    @classmethod
    def from_json(cls, data: Any, where: str = "models") -> SearchPage:
        r = _Reader(data, where)
        meta = _Reader(r.obj("metadata"), f"{where}.metadata")
        cursor = meta.data.get("nextCursor")
        if cursor is not None and not isinstance(cursor, (str, int)):
            raise MalformedResponse(f"{where}.metadata.nextCursor: expected a string")
        return cls(
            items=_each(r.array("items"), f"{where}.items", Model.from_json),
            next_cursor=None if cursor in (None, "") else str(cursor),
            next_page_url=meta.text("nextPage"),
        )


@dataclass(frozen=True)
class SearchQuery:
    """Filters of ``GET /api/v1/models``; empty fields are not sent."""

    query: str = ""
    types: tuple[str, ...] = ()
    base_models: tuple[str, ...] = ()
    sort: str = "Highest Rated"
    period: str = "AllTime"
    nsfw: bool = False
    tag: str = ""
    username: str = ""
    limit: int = 20
    cursor: str | None = None

    def params(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = [("limit", str(self.limit))]
        if self.query:
            out.append(("query", self.query))
        out += [("types", t) for t in self.types]
        if self.base_models:
            out.append(("baseModels", ",".join(self.base_models)))
        for key, value in (
            ("sort", self.sort),
            ("period", self.period),
            ("tag", self.tag),
            ("username", self.username),
        ):
            if value:
                out.append((key, value))
        out.append(("nsfw", "true" if self.nsfw else "false"))
        if self.cursor:
            out.append(("cursor", self.cursor))
        return out


MODEL_TYPES = (
    "Checkpoint",
    "TextualInversion",
    "Hypernetwork",
    "AestheticGradient",
    "LORA",
    "LoCon",
    "DoRA",
    "Controlnet",
    "Upscaler",
    "MotionModule",
    "VAE",
    "Poses",
    "Wildcards",
    "Workflows",
    "Detection",
    "Other",
)
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
