"""Civitai's two sites: which one to ask, and which one shows a model.

Since April 2026 civitai.com shows safe-for-work content only and civitai.red everything
(the same API on both). :class:`Sites` is the one place that decides, from the two
configured sites and the "allow mature content" setting, where search, model pages and
identification go, and on which site a model's page lives.
:class:`SiteLookups` asks a hash of the next allowed site when the first does not know it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from civdesk.core.civitai.errors import NotFound
from civdesk.core.settings import DEFAULT_API_BASE, DEFAULT_MATURE_API_BASE

if TYPE_CHECKING:
    from civdesk.core.civitai.client import CivitaiClient
    from civdesk.core.civitai.schema import Model, ModelVersion
    from civdesk.core.hashing import CancelFlag
    from civdesk.core.settings import Settings

#: nsfwLevel bits PG (1) and PG-13 (2): what the safe site shows. R (4) and up live on
#: the mature site.
SAFE_LEVELS = 1 | 2

T = TypeVar("T")


def is_mature(nsfw_level: int | None, nsfw: bool = False) -> bool:
    """Whether content of this ``nsfwLevel`` (a model's or a version's) is rated R or above,
    or flagged ``nsfw``: the safe site does not show it."""
    return bool(nsfw) or bool((nsfw_level or 0) & ~SAFE_LEVELS)


def paired_mature_site(safe: str, mature: str) -> str:
    """The mature site that goes with the safe site ``safe``.

    civitai.red is the mature twin of civitai.com only: a safe site pointed elsewhere (a
    mirror, a local server) with no mature site of its own given serves both, so mature
    lookups never go to a server the user did not choose.
    """
    if mature == DEFAULT_MATURE_API_BASE and safe != DEFAULT_API_BASE:
        return safe
    return mature


def configured_sites(settings: Settings, api_base: str | None = None,
                     mature_api_base: str | None = None) -> Sites:
    """The sites of ``settings``, or of this run's ``api_base`` / ``mature_api_base``."""
    safe = api_base or settings.api_base
    mature = mature_api_base or paired_mature_site(safe, settings.mature_api_base)
    return Sites(safe, mature, bool(settings.allow_nsfw))


@dataclass(frozen=True)
class Sites:
    """The safe site, the site with all content, and whether mature content is allowed."""

    safe: str
    mature: str
    allow_mature: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "safe", self.safe.rstrip("/"))
        object.__setattr__(self, "mature", self.mature.rstrip("/"))

    def allowing(self, mature: bool | None) -> Sites:
        """These sites with mature content allowed or not (None: as set)."""
        return self if mature is None else replace(self, allow_mature=mature)

    @property
    def content(self) -> str:
        """Where search, model pages and identification go."""
        return self.mature if self.allow_mature else self.safe

    @property
    def lookup_order(self) -> tuple[str, ...]:
        """The sites a hash is asked of, in order: the content site, then the other where
        the setting allows."""
        if not self.allow_mature or self.mature == self.safe:
            return (self.content,)
        return (self.mature, self.safe)

    @property
    def both(self) -> tuple[str, ...]:
        """Both configured sites (a link to a page of either names a Civitai model)."""
        return (self.safe, self.mature)

    def page_host(self, nsfw_level: int | None = None, nsfw: bool = False) -> str:
        """The site whose pages show content of this rating."""
        return self.mature if is_mature(nsfw_level, nsfw) else self.safe

    def model_page(self, model_id: int, version_id: int | None = None, *,
                   nsfw_level: int | None = None, nsfw: bool = False) -> str:
        """The address of a model's page (at a version) on the site that shows it."""
        url = f"{self.page_host(nsfw_level, nsfw)}/models/{model_id}"
        return f"{url}?modelVersionId={version_id}" if version_id is not None else url

    def page_of(self, model: Model) -> str:
        """A model's page, on civitai.red when it or any of its versions is mature."""
        level = model.nsfw_level
        for version in model.versions:
            level |= version.nsfw_level
        return self.model_page(model.id, nsfw_level=level, nsfw=model.nsfw)


#: Civitai's own two sites, mature content not allowed: the defaults.
CIVITAI_SITES = Sites(DEFAULT_API_BASE, DEFAULT_MATURE_API_BASE, allow_mature=False)


@contextmanager
def mature_hint(sites: Sites) -> Iterator[None]:
    """A model or version not found while mature content is hidden may be mature: the
    :class:`NotFound` then says how to allow it (the safe site answers 404 for those)."""
    try:
        yield
    except NotFound as exc:
        if sites.allow_mature or sites.mature == sites.safe:
            raise
        raise NotFound(f"{exc}; if it is mature content, allow mature content in Settings "
                       "(`civdesk config set-nsfw on`)", status=exc.status, url=exc.url) from exc


class SiteLookups:
    """What the scanner needs of a client, over the sites of :attr:`Sites.lookup_order`.

    A hash or version the first site does not know is asked of the next; everything else
    (preview images) goes to the first. Use from one thread at a time, as a client.
    """

    def __init__(self, clients: Sequence[CivitaiClient]) -> None:
        if not clients:
            raise ValueError("SiteLookups needs at least one client")
        self.clients = list(clients)

    @property
    def first(self) -> CivitaiClient:
        return self.clients[0]

    @property
    def base_url(self) -> str:
        return self.first.base_url

    @property
    def stop(self) -> CancelFlag | None:
        return self.first.stop

    @stop.setter
    def stop(self, flag: CancelFlag | None) -> None:
        for client in self.clients:
            client.stop = flag

    def versions_by_sha256(self, digests: Iterable[str]) -> dict[str, ModelVersion]:
        wanted = list(dict.fromkeys(d.strip().upper() for d in digests))
        found: dict[str, ModelVersion] = {}
        for client in self.clients:
            missing = [d for d in wanted if d not in found]
            if not missing:
                break
            found.update(client.versions_by_sha256(missing))
        return found

    def known_sha256(self, digests: Iterable[str]) -> dict[str, int] | None:
        """The digests one of the sites knows (see :meth:`CivitaiClient.known_sha256`);
        None when a site cannot tell."""
        missing = list(dict.fromkeys(d.strip().upper() for d in digests))
        known: dict[str, int] = {}
        for client in self.clients:
            if not missing:
                break
            found = client.known_sha256(missing)
            if found is None:
                return None
            known.update(found)
            missing = [d for d in missing if d not in found]
        return known

    def version_by_hash(self, digest: str) -> ModelVersion:
        return self._first_found(lambda client: client.version_by_hash(digest))

    def get_version(self, version_id: int) -> ModelVersion:
        return self._first_found(lambda client: client.get_version(version_id))

    def fetch_image(self, url: str) -> tuple[bytes, str]:
        return self.first.fetch_image(url)

    def clone(self) -> SiteLookups:
        return SiteLookups([client.clone() for client in self.clients])

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def _first_found(self, ask: Callable[[CivitaiClient], T]) -> T:
        for client in self.clients[:-1]:
            try:
                return ask(client)
            except NotFound:
                continue
        return ask(self.clients[-1])
