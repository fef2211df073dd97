"""The Models page shows models Civitai removed: a badge, a line in the detail pane and a
"Removed" filter, with everything the library had of them kept.

A real scan from the page, then Civitai (the double) archives a model and the update check
learns of it."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from tests.double import SampleCatalog
from tests.ui.library_cards import cards_of
from tests.ui.test_library_view import page, scan_by_click  # noqa: F401 - the page fixture

from civdesk.core.context import Core
from civdesk.core.library.repository import LibraryEntry
from civdesk.ui.library.model import (
    Role,
    Show,
)
from civdesk.ui.library.page import LibraryPage
from civdesk.ui.theme import badge_color


def test_an_archived_model_is_marked_with_a_filter_and_a_detail_line(
    qtbot, qtmodeltester, page: LibraryPage,  # noqa: F811 - the fixture imported above
    core: Core, model_folder: Path, civitai_catalog: SampleCatalog,
) -> None:
    scan_by_click(qtbot, page, core, model_folder)
    assert page.sidebar.item_for(("show", Show.REMOVED)).text() == "Removed  (0)"
    lora = next(e for e in page.snapshot.entries if e.type == "LORA")
    civitai_catalog.double.archive(civitai_catalog.lora)

    with (
        qtbot.waitSignal(page.update_check_finished, timeout=10_000) as finished,
        qtbot.waitSignal(page.snapshot_loaded, timeout=10_000),
    ):
        qtbot.mouseClick(page.updates_button, Qt.MouseButton.LeftButton)
    assert "1 removed from Civitai" in finished.args[0]
    assert page.sidebar.item_for(("show", Show.REMOVED)).text() == "Removed  (1)"
    page.show_filter(("show", Show.REMOVED))
    assert page.proxy.rowCount() == 1
    index = page.proxy.index(0, 0)
    assert index.data(Role.Removed) is True and index.data(Role.Path) == lora.path
    assert "Removed from Civitai" in index.data(Qt.ItemDataRole.ToolTipRole)
    # Everything the library had stays: name, trigger words, preview.
    [removed] = [e for e in page.snapshot.entries if e.removed]
    assert (removed.model_name, removed.trained_words, removed.preview) == (
        lora.model_name, lora.trained_words, lora.preview)
    qtmodeltester.check(page.proxy)

    assert page.select_path(lora.path)
    assert page.detail.removed_label.isVisibleTo(page)
    assert page.detail.removed_label.text().startswith("Removed from Civitai (archived, seen ")
    page.show_filter(("type", None))
    other = next(e for e in page.snapshot.entries if e.type != "LORA")
    assert page.select_path(other.path)
    assert not page.detail.removed_label.isVisibleTo(page)
    qtmodeltester.check(page.proxy)


def _has_color(image: QImage, rgb: int) -> bool:
    return any(image.pixel(x, y) & 0xFFFFFF == rgb & 0xFFFFFF
               for y in range(image.height()) for x in range(image.width()))


def test_a_removed_card_has_a_badge(qtbot, qtmodeltester, tmp_path: Path) -> None:
    up = LibraryEntry(
        path=str(tmp_path / "a.safetensors"), file_name="a.safetensors", size=1, sha256="A" * 64,
        model_id=1, version_id=2, model_name="Paperfold", version_name="v1", type="LORA",
        base_model="SD 1.5", trained_words=(), preview=None, info=None,
        added_at=datetime(2024, 1, 1, tzinfo=timezone.utc), identified=True, verified=True,
    )  # fmt: skip
    gone = dataclasses.replace(up, path=str(tmp_path / "b.safetensors"),
                               removed_at=datetime(2026, 5, 1, tzinfo=timezone.utc),
                               removed_how="taken down")
    proxy, cards = cards_of((up, gone), tmp_path / "cache", qtmodeltester)
    plain, badged = cards[up.path], cards[gone.path]
    badge = badge_color("removed").rgb()
    assert _has_color(badged, badge) and not _has_color(plain, badge)
    proxy.set_show(Show.REMOVED)
    assert proxy.rowCount() == 1 and proxy.index(0, 0).data(Role.Path) == gone.path
    qtmodeltester.check(proxy)
