"""One object that opens everything a front end needs: paths, database, settings, key, client.

The command line and the window both start from :meth:`Core.open`, so they see the same
library and the same settings. A ``requests.Session`` is not thread-safe: every thread that
talks to Civitai asks :meth:`Core.client` for its own client. All of them come from
:attr:`Core.connections`, so they share one rate governor per Civitai host.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from civdesk.core.civitai.sites import (
    SiteLookups,
    Sites,
    configured_sites,
    paired_mature_site,
)
from civdesk.core.library.db import Database
from civdesk.core.library.repository import Library
from civdesk.core.placement import download_folder
from civdesk.core.secret_text import clean_api_key
from civdesk.core.secrets import ApiKeyStore
from civdesk.core.settings import Settings
from civdesk.paths import AppPaths, app_paths

if TYPE_CHECKING:  # the HTTP stack loads with the first client: `list` never needs it
    from civdesk.core.civitai.client import CivitaiClient
    from civdesk.core.civitai.connections import Connections, Patience

ENV_API_BASE = "CIVITAI_API_BASE"
ENV_MATURE_API_BASE = "CIVITAI_MATURE_API_BASE"


@dataclass
class Core:
    paths: AppPaths
    db: Database
    library: Library
    settings: Settings
    keys: ApiKeyStore
    #: A key given on the command line for this run only (never stored).
    session_api_key: str | None = field(default=None, repr=False)
    #: An API base given on the command line or in the environment for this run only.
    session_api_base: str | None = None
    #: The same for the site with all content (``--mature-api-base``).
    session_mature_api_base: str | None = None
    _connections: Connections | None = field(default=None, init=False, repr=False)

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        mature_api_base: str | None = None,
    ) -> Core:
        api_key = clean_api_key(api_key, "The API key given for this run")  # before opening
        paths = app_paths(data_dir).ensure()
        db = Database.open(paths.database)
        library = Library(db)
        settings = Settings.load(library)
        return cls(
            paths=paths,
            db=db,
            library=library,
            settings=settings,
            keys=ApiKeyStore(paths.config),
            session_api_key=api_key,
            session_api_base=api_base or os.environ.get(ENV_API_BASE) or None,
            session_mature_api_base=(mature_api_base or os.environ.get(ENV_MATURE_API_BASE)
                                     or None),
        )

    @property
    def api_base(self) -> str:
        """The safe site (civitai.com shows safe-for-work content only)."""
        return self.session_api_base or self.settings.api_base

    @property
    def mature_api_base(self) -> str:
        """The site with all content, mature included."""
        if self.session_mature_api_base:
            return self.session_mature_api_base
        return paired_mature_site(self.api_base, self.settings.mature_api_base)

    @property
    def sites(self) -> Sites:
        """Both sites and the mature-content setting: which site each thing goes to."""
        return configured_sites(self.settings, self.session_api_base,
                                self.session_mature_api_base)

    @property
    def site(self) -> str:
        """The site search, model pages, lookups and downloads go to."""
        return self.sites.content

    def api_key(self) -> str | None:
        return self.session_api_key or self.keys.get()

    @property
    def connections(self) -> Connections:
        """The one connection policy: every client of this process is made by it."""
        if self._connections is None:
            from civdesk.core.civitai.connections import Connections

            self._connections = Connections()
        return self._connections

    def client(self, *, mature: bool | None = None,
               patience: Patience | None = None) -> CivitaiClient:
        """A new client for :attr:`site` with the current key (one per thread);
        ``mature`` overrides the mature-content setting for this client. Default
        ``patience``: background work's."""
        return self.connections.client(self.sites.allowing(mature).content, self.api_key(),
                                       _patience(patience))

    def thread_client(self, *, mature: bool | None = None,
                      patience: Patience | None = None) -> CivitaiClient:
        """This thread's client for the site and key as they are now (kept between calls)."""
        return self.connections.thread_client(
            self.sites.allowing(mature).content, self.api_key(), _patience(patience))

    def lookup_client(self) -> SiteLookups:
        """Identification's client: a hash the first site does not know is asked of the
        other where the mature-content setting allows."""
        key = self.api_key()
        return SiteLookups([self.connections.client(site, key)
                            for site in self.sites.lookup_order])

    def adopt_connections(self, connections: Connections) -> None:
        """Use ``connections`` (made before the core opened, for a request sent while it
        opened) for every client from now on, so they share its governors."""
        if self._connections is None:
            self._connections = connections

    def save_settings(self) -> None:
        self.settings.save(self.library)

    def folder_for_type(self, model_type: str) -> Path:
        """Where a download of the type goes (:func:`placement.download_folder`)."""
        return download_folder(self.settings, self.library, model_type)

    def close(self) -> None:
        self.db.close()


def _patience(patience: Patience | None) -> Patience:
    from civdesk.core.civitai.connections import BACKGROUND

    return BACKGROUND if patience is None else patience
