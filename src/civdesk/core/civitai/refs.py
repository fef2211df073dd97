"""Parse what a person pastes to name a model or a version.

Accepted forms::

    12345                                            a model version id
    model:123                                        a model id (its latest version)
    version:456                                      a model version id, spelled out
    https://civitai.com/models/123/some-slug         a model page
    https://civitai.com/models/123?modelVersionId=456   a version on its model page
    civitai.com/api/download/models/456              a download link
    https://civitai.com/model-versions/456           (and /api/v1/model-versions/456)
    urn:air:sdxl:lora:civitai:123@456                an AIR (model, optionally @version)

Links are accepted on both of Civitai's sites, civitai.com and civitai.red (where mature
models have lived since April 2026; the old civitai.green too) and their subdomains, and on
the host of each configured site (``api_base``), whose pages another Civitai-compatible
server links to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, parse_qs, urlsplit

from civdesk.core.errors import CivdeskError

if TYPE_CHECKING:
    from civdesk.core.civitai.client import CivitaiClient
    from civdesk.core.civitai.schema import Model, ModelVersion


class BadReference(CivdeskError, ValueError):
    """Text that names no Civitai model or version."""


class MismatchedLink(CivdeskError):
    """A model page link whose version belongs to another model."""


class NoVersions(CivdeskError):
    """A model without any version: nothing to download or link."""


@dataclass(frozen=True)
class ModelRef:
    """A model, a version of it, or both. At least one id is set.

    ``version_id`` None means "the latest version of ``model_id``".
    """

    model_id: int | None = None
    version_id: int | None = None

    def __post_init__(self) -> None:
        if self.model_id is None and self.version_id is None:
            raise ValueError("A ModelRef needs a model id or a version id")

    @property
    def is_version(self) -> bool:
        return self.version_id is not None


_ID = r"[1-9][0-9]{0,11}"
_AIR = re.compile(
    rf"^urn:air:[^:\s]+:[^:\s]+:civitai:(?P<model>{_ID})(?:@(?P<version>{_ID}))?"
    r"(?:\.[A-Za-z0-9]+)?$",
    re.IGNORECASE,
)
_PREFIXED = re.compile(rf"^(?P<kind>model|version|modelversion)\s*[:#]\s*(?P<id>{_ID})$",
                       re.IGNORECASE)
_PATHS = (
    (re.compile(rf"^/models/(?P<model>{_ID})(?:/|$)"), "model"),
    (re.compile(rf"^/api/download/models/(?P<version>{_ID})/?$"), "version"),
    (re.compile(rf"^(?:/api/v1)?/model-versions/(?P<version>{_ID})/?$"), "version"),
    (re.compile(rf"^/api/v1/models/(?P<model>{_ID})/?$"), "model"),
)
#: Civitai's own sites, any subdomain (www., a CDN's name…).
_SITE = r"(?:[a-z0-9-]+\.)*civitai\.(?:com|red|green)"
_HOST = re.compile(rf"^{_SITE}$", re.IGNORECASE)


def parse_ref(text: str, api_base: str | Sequence[str] | None = None) -> ModelRef:
    """The model/version ``text`` names; :class:`BadReference` with a hint otherwise.

    ``api_base`` is the configured Civitai site (or sites): links to its pages are accepted
    too.
    """
    value = text.strip().strip("<>\"'")
    if not value:
        raise BadReference("Enter a Civitai model link, a version id or model:<id>")
    if re.fullmatch(_ID, value):
        return ModelRef(version_id=int(value))
    match = _PREFIXED.match(value)
    if match:
        number = int(match.group("id"))
        if match.group("kind").lower() == "model":
            return ModelRef(model_id=number)
        return ModelRef(version_id=number)
    match = _AIR.match(value)
    if match:
        version = match.group("version")
        return ModelRef(model_id=int(match.group("model")),
                        version_id=int(version) if version else None)
    ref = _parse_url(value, api_base)
    if ref is not None:
        return ref
    shown = value if len(value) <= 60 else value[:57] + "…"
    raise BadReference(
        f"Not a Civitai model reference: {shown!r} — paste a civitai.com/models/… or "
        "civitai.red/models/… link, a version id, or model:<id>"
    )


def _parse_url(value: str, api_base: str | Sequence[str] | None) -> ModelRef | None:
    if "://" not in value:
        if not re.match(rf"^{_SITE}/", value, re.IGNORECASE):
            return None
        value = "https://" + value
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not _on_civitai_site(parts, api_base):
        return None
    query = parse_qs(parts.query, keep_blank_values=True)
    for pattern, kind in _PATHS:
        match = pattern.match(parts.path)
        if not match:
            continue
        if kind == "version":
            return ModelRef(version_id=int(match.group("version")))
        model_id = int(match.group("model"))
        if "modelVersionId" not in query:
            return ModelRef(model_id=model_id)
        return ModelRef(model_id=model_id, version_id=_version_in_link(query))
    return None


def _version_in_link(query: dict[str, list[str]]) -> int:
    # A version the link names but garbled must not quietly become "the latest version".
    version = query["modelVersionId"][0].strip()
    if not re.fullmatch(_ID, version):
        raise BadReference(f"The link's modelVersionId {version!r} is not a version id — "
                           "copy the link again, or give the version id alone")
    return int(version)


def _on_civitai_site(link: SplitResult, api_base: str | Sequence[str] | None) -> bool:
    """Whether ``link`` is on one of Civitai's sites or on a configured site's host."""
    if _HOST.match(link.hostname or ""):
        return True
    bases = [api_base] if isinstance(api_base, str) else list(api_base or ())
    for base in bases:
        try:
            site = urlsplit(base)
            if site.hostname and (link.hostname, link.port) == (site.hostname, site.port):
                return True
        except ValueError:  # a port that is not a number
            continue
    return False


def resolve_version(
    client: CivitaiClient, ref: ModelRef, *, fetched_model: Callable[[Model], object] | None = None
) -> ModelVersion:
    """The version a reference names: the given version, or the model's latest one.

    The version comes in its ``/model-versions`` form (with ``modelId`` and ``model``), the
    form the library stores. ``fetched_model`` is called with the model when a model
    reference made it fetched, for a caller that keeps it.
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
    if fetched_model is not None:
        fetched_model(model)
    latest = model.latest_version
    if latest is None:
        raise NoVersions(f"Model {model.id} ({model.name}) has no published version")
    return model.with_version_model(latest)
