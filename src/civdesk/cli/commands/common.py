"""Small helpers shared by the command modules."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from civdesk.cli.errors import UsageError
from civdesk.core.civitai.refs import BadReference, ModelRef, parse_ref
from civdesk.core.civitai.schema import MODEL_TYPES
from civdesk.core.errors import CivdeskError

if TYPE_CHECKING:
    from civdesk.core.civitai.client import CivitaiClient
    from civdesk.core.civitai.schema import ModelVersion

Subparsers = argparse._SubParsersAction


def json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON on stdout (and no progress)")


def model_type(text: str) -> str:
    """``lora`` → ``LORA``: Civitai's spelling of a model type, matched without case."""
    for known in MODEL_TYPES:
        if known.lower() == text.strip().lower():
            return known
    raise argparse.ArgumentTypeError(
        f"unknown model type {text!r} (one of: {', '.join(MODEL_TYPES)})")


def existing_folder(text: str) -> Path:
    """An absolute, resolved folder that exists (a clear usage error otherwise)."""
    path = Path(text).expanduser().resolve()
    if not path.exists():
        raise UsageError(f"No such folder: {path}")
    if not path.is_dir():
        raise UsageError(f"Not a folder: {path}")
    return path


def parse_reference(text: str, api_base: str | None = None) -> ModelRef:
    """A REF argument; a malformed one is a usage error (exit 2), with the accepted forms."""
    try:
        return parse_ref(text, api_base)
    except BadReference as exc:
        raise UsageError(str(exc)) from None


def resolve_version(client: CivitaiClient, ref: ModelRef) -> ModelVersion:
    """The version a reference names: the given version, or the model's latest one.

    The version comes in its ``/model-versions`` form (with ``modelId`` and ``model``), the
    form the library stores.
    """
    if ref.version_id is not None:
        version = client.get_version(ref.version_id)
        if ref.model_id is not None and version.model_id not in (None, ref.model_id):
            # A link pieced together from two pages: which one was meant is anyone's guess.
            raise MismatchedLink(
                f"The link is to model {ref.model_id}, but its modelVersionId {version.id} "
                f"is a version of model {version.model_id}: copy the link again, or give "
                "the version id alone")
        return version
    assert ref.model_id is not None
    model = client.get_model(ref.model_id)
    latest = model.latest_version
    if latest is None:
        raise NoVersions(f"Model {model.id} ({model.name}) has no published version to download")
    return model.with_version_model(latest)


class MismatchedLink(CivdeskError):
    """A model page link whose version belongs to another model."""


class NoVersions(CivdeskError):
    """A model without any version: nothing to download or link."""
