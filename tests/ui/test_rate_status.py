"""Civitai's rate limits reach the window: one governor per host shared by thumbnails,
browsing and the scan, and a status line that says when Civitai slows civdesk down."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from tests.double import CivitaiDouble, SampleCatalog

from civdesk.core.civitai.errors import RateLimited
from civdesk.core.civitai.schema import SearchQuery
from civdesk.ui.browser.worker import BrowserClients
from civdesk.ui.thumbnails import ThumbnailLoader


def test_thumbnails_browsing_and_the_scan_share_one_governor_per_host(
    qtbot, core, civitai: CivitaiDouble, civitai_catalog: SampleCatalog
) -> None:
    browser = BrowserClients(core).get()
    lookups = core.lookup_client()
    api_host = urlsplit(civitai.base_url).netloc
    assert browser.governors is lookups.first.governors is core.connections.governors

    # The page meets a 429 (it gives up at once: a person is waiting) ...
    civitai.rate_limit(1, retry_after=20, path_prefix="/api/v1/models")
    with pytest.raises(RateLimited):
        browser.search(SearchQuery(query="Clear"))
    # ... and the scan's lookups now wait for the pause too, as does the window's line.
    governor = core.connections.governors(api_host)
    assert governor.delay() > 15
    assert core.connections.status().startswith(
        "Civitai is rate limiting: slowed down, resuming in ")

    # A thumbnail that meets a 429 slows every other fetch from that host.
    image = civitai_catalog.lora_v1.images[0]
    url = civitai.image_url(image)
    civitai.rate_limit(1, retry_after=0.2, path_prefix=urlsplit(url).path)
    loader = ThumbnailLoader.for_core(core)
    data, _ = loader._fetch(url)  # type: ignore[misc]  # waited, then fetched
    assert data
    images = core.connections.governors(urlsplit(url).netloc)
    assert images.rate_limits == 1 and images.state().spacing > 0
    # The scan's client, fetching a preview from that host now, waits its turn.
    assert lookups.first.governors(urlsplit(url).netloc) is images
    assert images.delay() > 0

def test_the_status_bar_says_when_civitai_slows_civdesk_down(
    qtbot, main_window, core
) -> None:
    label = main_window.rate_label
    assert label.isHidden()
    governor = core.connections.governors("civitai.example")
    governor.rate_limited(governor.clock(), retry_after=45)
    qtbot.waitUntil(lambda: not label.isHidden(), timeout=5_000)
    assert label.text().startswith("Civitai rate limit: resuming in 4")  # short on the bar…
    assert label.toolTip().startswith("Civitai is rate limiting: slowed down, resuming in 4")
    governor._not_before = 0.0  # the pause is over (and the spacing recovered)
    for _ in range(40):
        governor.answered()
    qtbot.waitUntil(lambda: label.isHidden(), timeout=5_000)
