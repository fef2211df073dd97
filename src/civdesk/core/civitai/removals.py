"""What Civitai removed, concluded only from answers that prove it.

An archived or taken-down model says so (``model.mode``; the library's stores record that
themselves), and the download endpoint answers 410 for an archived one. A 404 proves less:
civitai.com answers 404 for mature models it no longer shows, so a known version is taken
as removed only when the site with all content answers 404 for it too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.civitai.errors import CivitaiError, NotFound
from civdesk.core.civitai.sites import Sites
from civdesk.core.library.repository import Library

log = logging.getLogger(__name__)


class Removals:
    """Records in the library what Civitai removed (never deletes or rewrites anything)."""

    def __init__(self, library: Library, sites: Sites | None = None,
                 api_key: str | None = None) -> None:
        """``sites``: the configured sites; without them a 404 proves nothing."""
        self.library = library
        self.sites = sites
        self.api_key = api_key

    def archived(self, version_id: int) -> bool:
        """The download of a version answered 410: its model is archived. Whether the
        library knows the version (and so recorded it)."""
        return self.library.mark_model_removed(version_id, "Archived")

    def version_not_found(self, version_id: int, answered_by: str) -> bool:
        """``answered_by`` (a site's base URL) answered 404 for a version. Recorded as
        removed (True) when the library knows the version and the site with all content
        does not have it either; asked of that site when the 404 came from another."""
        if self.sites is None or self.library.version_json(version_id) is None:
            return False
        complete = self.sites.mature
        if answered_by.rstrip("/") != complete:
            client = CivitaiClient(complete, self.api_key)
            try:
                client.get_version(version_id)
                return False  # only hidden from the site that answered (mature content)
            except NotFound:
                pass
            except CivitaiError as exc:
                log.info("Version %s: could not ask %s whether it is removed: %s",
                         version_id, complete, exc)
                return False
            finally:
                client.close()
        log.info("Version %s is no longer on Civitai: marked removed", version_id)
        return self.library.mark_version_removed(version_id)

    @contextmanager
    def watching(self, version_id: int | None, answered_by: str) -> Iterator[None]:
        """Around a request about a version: a 404 that proves it removed is recorded, and
        raised again saying so."""
        try:
            yield
        except NotFound as exc:
            if version_id is None or not self.version_not_found(version_id, answered_by):
                raise
            raise NotFound(f"Model version {version_id} was removed from Civitai; the library "
                           "keeps what it has of it", status=exc.status, url=exc.url) from exc
