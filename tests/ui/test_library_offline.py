"""The Models page shows files whose drive is unplugged as offline: greyed, with a filter.

A real scan from the page (the Lora folder is a symlink to a "drive" whose folder is taken
away, then put back), real database, real cards painted by the delegate.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from PySide6.QtGui import QImage
from tests.ui.library_cards import cards_of
from tests.ui.test_library_view import page, scan_by_click  # noqa: F401 - the page fixture

from civdesk.core.context import Core
from civdesk.ui.library.model import (
    Role,
    Show,
)
from civdesk.ui.library.page import LibraryPage


def _linked_lora_folder(model_folder: Path, drive: Path) -> Path:
    """Moves the Lora folder to ``drive`` and links it back in, as an external drive."""
    drive.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(model_folder / "Lora", drive)
    (model_folder / "Lora").symlink_to(drive, target_is_directory=True)
    return drive


def _contrast(image: QImage) -> float:
    """The spread of grey levels inside the card: a greyed card has little."""
    levels = [image.pixelColor(x, y).lightness()
              for y in range(12, image.height() - 12, 3)
              for x in range(12, image.width() - 12, 3)]
    mean = sum(levels) / len(levels)
    return (sum((v - mean) ** 2 for v in levels) / len(levels)) ** 0.5


def test_an_unplugged_drive_shows_offline_cards_and_filter_then_comes_back(
    qtbot, qtmodeltester, page: LibraryPage,  # noqa: F811 - the fixture imported above
    core: Core, model_folder: Path, tmp_path: Path,
) -> None:
    drive = _linked_lora_folder(model_folder, tmp_path / "media" / "usb" / "Lora")
    scan_by_click(qtbot, page, core, model_folder)
    assert len(page.snapshot.entries) == 4 and page.snapshot.offline_count == 0

    drive.parent.rename(tmp_path / "media" / "unplugged")
    scan_by_click(qtbot, page, core, model_folder)

    assert len(page.snapshot.entries) == 4, "nothing forgotten"
    [offline] = [e for e in page.snapshot.entries if e.offline]
    assert offline.path.startswith(str(model_folder / "Lora"))
    assert page.sidebar.item_for(("show", Show.OFFLINE)).text() == "Offline  (1)"
    page.show_filter(("show", Show.OFFLINE))
    assert page.proxy.rowCount() == 1
    index = page.proxy.index(0, 0)
    assert index.data(Role.Offline) is True and index.data(Role.Path) == offline.path
    assert "Offline" in index.data(0x0003)  # the tooltip says why it is greyed
    qtmodeltester.check(page.proxy)

    (tmp_path / "media" / "unplugged").rename(drive.parent)
    scan_by_click(qtbot, page, core, model_folder)
    assert page.snapshot.offline_count == 0 and len(page.snapshot.entries) == 4
    assert page.proxy.rowCount() == 0  # the Offline view is empty now
    assert "No offline files" in page.empty_hint.text()
    page.show_filter(("type", None))
    assert page.proxy.rowCount() == 4
    qtmodeltester.check(page.proxy)


def test_the_scan_summary_counts_offline_files() -> None:
    from civdesk.core.scanner import ScanSummary
    from civdesk.ui.scan import summary_text

    assert "2 offline" in summary_text(ScanSummary(found=3, offline=2))
    assert "offline" not in summary_text(ScanSummary(found=3))


def test_an_offline_card_is_greyed_with_a_badge(qtbot, qtmodeltester, tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from civdesk.core.library.repository import LibraryEntry

    online = LibraryEntry(
        path=str(tmp_path / "a.safetensors"), file_name="a.safetensors", size=1, sha256="A" * 64,
        model_id=1, version_id=2, model_name="Paperfold", version_name="v1", type="LORA",
        base_model="SD 1.5", trained_words=(), preview=None, info=None,
        added_at=datetime(2024, 1, 1, tzinfo=timezone.utc), identified=True,
    )  # fmt: skip
    offline = dataclasses.replace(online, path=str(tmp_path / "b.safetensors"), offline=True)
    proxy, cards = cards_of((online, offline), tmp_path / "cache", qtmodeltester)
    bright, greyed = cards[online.path], cards[offline.path]
    assert _contrast(greyed) < 0.5 * _contrast(bright)
    proxy.set_show(Show.OFFLINE)
    assert proxy.rowCount() == 1 and proxy.index(0, 0).data(Role.Path) == offline.path
    qtmodeltester.check(proxy)
