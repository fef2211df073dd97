"""The double's catalog: fake models, versions, files and preview images.

Ids come from distinct ranges so a test can't mix up a model id with a version id.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
import uuid
from dataclasses import dataclass, field

from tests.double.content import Content, FileHashes, compute_hashes
from tests.double.images import encode_image

MODEL_IDS_FROM = 1_000
VERSION_IDS_FROM = 50_000
FILE_IDS_FROM = 90_000
IMAGE_IDS_FROM = 300_000

# Section 6: <accountHash>/<uuid>/<params>/<name>.<ext> (an invented account hash).
ACCOUNT_HASH = "dBl7kqKTMzGDvpLrqFT0cD"
FIRST_PUBLISHED = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.timezone.utc)

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
FILE_TYPES = (
    "Model",
    "Pruned Model",
    "Training Data",
    "Config",
    "Text Encoder",
    "VAE",
    "Negative",
    "Archive",
)
FILE_FORMATS = ("SafeTensor", "PickleTensor", "GGUF", "Diffusers", "Core ML", "ONNX", "Other")
FILE_SIZES = ("full", "pruned")
FILE_FPS = ("fp16", "fp8", "nf4", "fp32", "bf16")
BASE_MODEL_TYPES = ("Standard", "Inpainting", "Refiner", "Pix2Pix")
BASE_MODELS = (
    "SD 1.4",
    "SD 1.5",
    "SD 1.5 LCM",
    "SD 2.0",
    "SD 2.1",
    "SDXL 1.0",
    "SDXL Turbo",
    "Pony",
    "Illustrious",
    "NoobAI",
    "SD 3.5",
    "Flux.1 D",
    "Flux.1 S",
    "Other",
)


def iso(moment: dt.datetime) -> str:
    """Civitai's timestamp form: UTC with milliseconds and a Z."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def filenamize(text: str) -> str:
    """Civitai's served-name style: punctuation dropped, words joined camel-case."""
    words = re.findall(r"[A-Za-z0-9]+", text)
    if not words:
        return "model"
    first, rest = words[0], words[1:]
    return first[0].lower() + first[1:] + "".join(w[0].upper() + w[1:] for w in rest)


@dataclass(eq=False)
class FakeFile:
    id: int
    content: Content
    name: str | None  # None until attached to a version, then Civitai-style
    type: str = "Model"
    primary: bool | None = None  # None: decided when attached (Civitai's preference order)
    format: str = "SafeTensor"
    fp: str | None = "fp16"
    size_label: str | None = None  # metadata.size: "full" | "pruned"
    pickle_scan: str = "Success"  # pickleScanResult
    pickle_message: str = "No Pickle imports"
    virus_scan: str = "Success"  # virusScanResult
    version_id: int | None = None
    _hashes: FileHashes | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def size(self) -> int:
        return self.content.size

    @property
    def hashes(self) -> FileHashes:
        with self._lock:  # two server threads may ask at once; hash once
            if self._hashes is None:
                self._hashes = compute_hashes(self.content)
            return self._hashes

    @property
    def sha256(self) -> str:
        return self.hashes.sha256

    def read_bytes(self) -> bytes:
        """All bytes (only sensible for small files)."""
        return self.content.read()


@dataclass(eq=False)
class FakeImage:
    id: int
    kind: str  # real encoding: png | jpeg | webp
    served_as: str  # extension in the URL, which need not match `kind` (as on Civitai)
    nsfw_level: int
    data: bytes
    width: int
    height: int
    content_type: str
    uuid: str
    meta: dict[str, object] | None = None
    # A body streamed from here instead of ``data`` (an image too large to hold), sent with
    # or without its Content-Length.
    content: Content | None = None
    announce_length: bool = True
    status: int = 200

    def path(self, variant: str = "width=450") -> str:
        return f"/{ACCOUNT_HASH}/{self.uuid}/{variant}/{self.id}.{self.served_as}"


@dataclass(eq=False)
class FakeVersion:
    id: int
    model_id: int
    name: str
    base_model: str
    trained_words: list[str]
    files: list[FakeFile]
    images: list[FakeImage]
    published_at: dt.datetime
    description: str | None = None
    base_model_type: str | None = "Standard"
    nsfw_level: int = 1
    download_count: int = 0
    thumbs_up: int = 0

    @property
    def primary_file(self) -> FakeFile | None:
        return next((f for f in self.files if f.primary), None)


@dataclass(eq=False)
class FakeModel:
    id: int
    name: str
    type: str
    nsfw: bool
    tags: list[str]
    creator: str
    description: str | None
    poi: bool = False
    download_count: int = 0
    thumbs_up: int = 0
    comment_count: int = 0
    versions: list[FakeVersion] = field(default_factory=list)

    @property
    def published_versions(self) -> list[FakeVersion]:
        """Newest first, as the API lists them."""
        return sorted(self.versions, key=lambda v: (v.published_at, v.id), reverse=True)

    @property
    def latest_published(self) -> dt.datetime | None:
        return max((v.published_at for v in self.versions), default=None)


class Catalog:
    """Holds everything the double serves; the by-hash index is rebuilt after changes."""

    def __init__(self) -> None:
        self.models: dict[int, FakeModel] = {}
        self.versions: dict[int, FakeVersion] = {}
        self.files: dict[int, FakeFile] = {}
        self.images: dict[str, FakeImage] = {}  # by uuid, as the storage host finds them
        self._model_ids = itertools.count(MODEL_IDS_FROM)
        self._version_ids = itertools.count(VERSION_IDS_FROM)
        self._file_ids = itertools.count(FILE_IDS_FROM)
        self._image_ids = itertools.count(IMAGE_IDS_FROM)
        self._lock = threading.RLock()
        self._hash_index: dict[str, FakeFile] | None = None

    # -- building -------------------------------------------------------------------------

    def new_file_id(self) -> int:
        with self._lock:
            return next(self._file_ids)

    def new_image(self, kind: str, nsfw_level: int, served_as: str) -> FakeImage:
        with self._lock:
            image_id = next(self._image_ids)
        encoded = encode_image(kind, seed=image_id)
        image = FakeImage(
            id=image_id,
            kind=kind,
            served_as=served_as,
            nsfw_level=nsfw_level,
            data=encoded.data,
            width=encoded.width,
            height=encoded.height,
            content_type=encoded.content_type,
            uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"civdesk-double-image-{image_id}")),
        )
        with self._lock:
            self.images[image.uuid] = image
        return image

    def add_model(self, **fields: object) -> FakeModel:
        with self._lock:
            model = FakeModel(id=next(self._model_ids), **fields)  # type: ignore[arg-type]
            self.models[model.id] = model
            return model

    def add_version(
        self, model: FakeModel, files: list[FakeFile], images: list[FakeImage], **fields: object
    ) -> FakeVersion:
        with self._lock:
            version_id = next(self._version_ids)
            if fields.get("published_at") is None:
                # Later versions are newer, so "an update exists" needs no dates in tests.
                fields["published_at"] = FIRST_PUBLISHED + dt.timedelta(days=version_id % 10_000)
            version = FakeVersion(
                id=version_id,
                model_id=model.id,
                files=files,
                images=images,
                **fields,  # type: ignore[arg-type]
            )
            self._attach_files(model, version)
            model.versions.append(version)
            self.versions[version.id] = version
            self._hash_index = None
            return version

    def _attach_files(self, model: FakeModel, version: FakeVersion) -> None:
        flagged = [f for f in version.files if f.primary]
        if len(flagged) > 1:
            raise ValueError("a version has exactly one primary file")
        if not flagged and version.files:
            preferred = min(version.files, key=lambda f: _type_rank(f.type))
            preferred.primary = True
        for f in version.files:
            if f.version_id is not None:
                raise ValueError(f"file {f.id} already belongs to version {f.version_id}")
            f.version_id = version.id
            f.primary = bool(f.primary)
            if f.name is None:
                f.name = _served_name(model, version, f)
            self.files[f.id] = f

    # -- lookups --------------------------------------------------------------------------

    def model_of(self, version: FakeVersion) -> FakeModel:
        return self.models[version.model_id]

    def file_by_hash(self, value: str) -> FakeFile | None:
        with self._lock:
            if self._hash_index is None:
                self._hash_index = self._build_hash_index()
            return self._hash_index.get(value.strip().upper())

    def _build_hash_index(self) -> dict[str, FakeFile]:
        index: dict[str, FakeFile] = {}
        for f in self.files.values():
            for key in f.hashes.lookup_keys():
                index.setdefault(key, f)
        return index


def _type_rank(file_type: str) -> int:
    return FILE_TYPES.index(file_type) if file_type in FILE_TYPES else len(FILE_TYPES)


def _served_name(model: FakeModel, version: FakeVersion, f: FakeFile) -> str:
    """Section 4.3, simplified: <model>_<version>.<ext>, TI named after the trigger word."""
    ext = {"PickleTensor": "pt", "GGUF": "gguf", "ONNX": "onnx"}.get(f.format, "safetensors")
    if f.type == "Training Data":
        return f"{filenamize(model.name)}_{filenamize(version.name)}_trainingData.zip"
    if f.type in ("Config",):
        return f"{filenamize(model.name)}_{filenamize(version.name)}.yaml"
    if model.type == "TextualInversion" and version.trained_words:
        suffix = "-neg" if f.type == "Negative" else ""
        return f"{filenamize(version.trained_words[0])}{suffix}.{ext}"
    if f.type == "VAE":
        return f"{filenamize(model.name)}_vae.{ext}"
    suffix = "_txt" if f.type == "Text Encoder" else ""
    return f"{filenamize(model.name)}_{filenamize(version.name)}{suffix}.{ext}"
