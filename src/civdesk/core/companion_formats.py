"""Companions for the other tools people keep beside civdesk, in exactly their formats.

Off by default (the ``companion_formats`` setting; ``civdesk config set-companions``):
- ``cm-info``: Stability Matrix's ``<stem>.cm-info.json``, its ``ConnectedModelInfo`` as its
  System.Text.Json writes it (PascalCase properties, enums by name, nulls left out; the
  file metadata's own ``fp``/``size``/``format`` names).
- ``metadata-json``: ComfyUI-Lora-Manager's ``<stem>.metadata.json``, its
  ``BaseModelMetadata`` (snake_case, ``sha256`` lower-case, the version JSON under
  ``civitai``; LoRAs add ``usage_tips``, checkpoints and embeddings ``sub_type``).

Then those tools show civdesk's downloads as connected. Each file is written atomically,
only under the model's own stem (one no other model file in the folder shares: the tools
look nowhere else) and never over an existing file: one there is the tool's own, or
describes another model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from civdesk.core.civitai.schema import ModelFile, ModelVersion
from civdesk.core.errors import CivdeskError
from civdesk.core.longpaths import os_path
from civdesk.core.settings import COMPANION_FORMATS, DEFAULT_COMPANION_FORMATS
from civdesk.core.sidecars import (
    LORA_MANAGER_SUFFIX,
    STABILITY_MATRIX_SUFFIX,
    free_stem,
    place_new_companion,
    stem_of,
)

CIVITAI_INFO, CM_INFO, METADATA_JSON = COMPANION_FORMATS  # civitai-info: always written

# Lora Manager keeps a record per kind of model; these are its kinds' extra fields.
_LORA_TYPES = {"LORA", "LoCon", "DoRA"}
_SUB_TYPES = {"Checkpoint": "checkpoint", "TextualInversion": "embedding"}


def parse_formats(text: str) -> list[str]:
    """``civitai-info,cm-info`` as a list; ValueError naming the ones not known."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in COMPANION_FORMATS]
    if unknown:
        raise ValueError(f"unknown companion format {', '.join(unknown)}: choose from "
                         f"{', '.join(COMPANION_FORMATS)}")
    return [f for f in COMPANION_FORMATS if f in names or f == CIVITAI_INFO]


def cm_info(version: ModelVersion, sha256: str, file: ModelFile | None,
            now: datetime | None = None) -> dict[str, Any]:
    """Stability Matrix's ConnectedModelInfo for the file with ``sha256`` of ``version``."""
    model = version.model
    hashes = {kind: value for kind, value in (file.hashes if file else {}).items()
              if kind in ("CRC32", "BLAKE3")}
    meta = file.metadata if file else None
    out: dict[str, Any] = {
        "ModelId": version.model_id,
        "ModelName": model.name if model else "",
        "ModelDescription": "",
        "Nsfw": bool(model and model.nsfw),
        "Tags": [],
        "ModelType": model.type if model else "Unknown",
        "VersionId": version.id,
        "VersionName": version.name,
        "VersionDescription": version.description,
        "BaseModel": version.base_model,
        "FileMetadata": {key: value for key, value in (
            ("fp", meta.fp), ("size", meta.size), ("format", meta.format))
            if value is not None} if meta else None,
        "ImportedAt": (now or datetime.now(timezone.utc)).isoformat(),
        "Hashes": {"SHA256": sha256.upper(), **hashes},
        "TrainedWords": list(version.trained_words),
    }
    return {key: value for key, value in out.items() if value is not None}


def lora_manager_metadata(model_path: Path, version: ModelVersion, sha256: str,
                          preview: Path | None) -> dict[str, Any]:
    """Lora Manager's record of the model file at ``model_path``."""
    model = version.model
    raw = dict(version.raw)
    st = os.stat(os_path(model_path))
    out: dict[str, Any] = {
        "file_name": stem_of(model_path),
        "model_name": model.name if model else stem_of(model_path),
        "file_path": model_path.as_posix(),
        "size": st.st_size,
        "modified": st.st_mtime,
        "sha256": sha256.lower(),
        "base_model": version.base_model or "",
        "preview_url": preview.as_posix() if preview else "",
        "preview_nsfw_level": 0,
        "notes": "",
        "from_civitai": True,
        "civitai": raw,
        "tags": [],
        "modelDescription": "",
        "civitai_deleted": False,
        "favorite": False,
        "exclude": False,
        "db_checked": False,
        "last_checked_at": 0,
    }
    kind = model.type if model else None
    if kind in _LORA_TYPES:
        out["usage_tips"] = "{}"
    elif kind in _SUB_TYPES:
        out["sub_type"] = _SUB_TYPES[kind]
    return out


def write_for_other_tools(
    model_path: Path, version: ModelVersion, sha256: str | None, formats: Collection[str],
    preview: Path | None = None, siblings: Collection[str] | None = None,
) -> tuple[list[Path], list[str]]:
    """Write the other tools' companions in ``formats`` that are missing; (the files
    written, problems in words). Nothing for a version known only from a sidecar (its
    own sidecar is there) or without the file's hash."""
    wanted = [f for f in (CM_INFO, METADATA_JSON) if f in formats]
    if not wanted or not sha256 or version.from_sidecar_only:
        return [], []
    stem = free_stem(model_path, siblings)  # the scan's listing: no disk lookups
    if stem != stem_of(model_path):
        return [], []  # the plain stem is another model's too: the tools could not tell
    file = version.file_with_hash(sha256)
    written: list[Path] = []
    problems: list[str] = []
    for fmt in wanted:
        suffix, data = ((STABILITY_MATRIX_SUFFIX, cm_info(version, sha256, file))
                        if fmt == CM_INFO else
                        (LORA_MANAGER_SUFFIX,
                         lora_manager_metadata(model_path, version, sha256, preview)))
        path = model_path.with_name(stem + suffix)
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        try:
            if place_new_companion(path, text.encode("utf-8")):
                written.append(path)
        except (CivdeskError, OSError) as err:
            problems.append(f"No {path.name}: {err}")
    return written, problems


def formats_of(settings: Any) -> tuple[str, ...]:
    """The formats a settings object asks for (the defaults for one without the field)."""
    return tuple(getattr(settings, "companion_formats", DEFAULT_COMPANION_FORMATS))
