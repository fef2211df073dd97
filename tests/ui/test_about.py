"""Help ▸ About: versions, folders with working "Open" links, copyable details."""

from __future__ import annotations

from pathlib import Path

import PySide6
import pytest
from PySide6.QtCore import QUrl, qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QPushButton

from civdesk import __version__
from civdesk.paths import app_paths
from civdesk.ui.about import AboutDialog


@pytest.fixture
def opened() -> list[QUrl]:
    return []


@pytest.fixture
def dialog(qtbot, tmp_path: Path, opened: list[QUrl]) -> AboutDialog:
    paths = app_paths(tmp_path / "data")
    paths.data.mkdir(parents=True)  # the others stay missing
    about = AboutDialog(paths=paths, open_url=opened.append)
    qtbot.addWidget(about)
    return about


def texts(dialog: AboutDialog) -> list[str]:
    return [label.text() for label in dialog.findChildren(QLabel)]


def test_shows_the_versions(dialog: AboutDialog):
    shown = texts(dialog)
    assert f"Version {__version__}" in shown
    assert qVersion() in shown
    assert PySide6.__version__ in shown


def test_the_icon_is_drawn(dialog: AboutDialog):
    pixmaps = [label.pixmap() for label in dialog.findChildren(QLabel)]
    assert any(not pixmap.isNull() and pixmap.width() >= 64 for pixmap in pixmaps)


def test_open_link_opens_the_folder(dialog: AboutDialog, tmp_path: Path, opened: list[QUrl]):
    link = dialog.findChild(QLabel, "openDataFolder")
    assert link is not None and "href" in link.text()
    href = link.text().split('"')[1]
    link.linkActivated.emit(href)
    assert [Path(url.toLocalFile()) for url in opened] == [(tmp_path / "data").resolve()]


def test_a_missing_folder_has_no_link(dialog: AboutDialog, opened: list[QUrl]):
    link = dialog.findChild(QLabel, "openLogsFolder")
    assert link is not None
    assert "href" not in link.text()
    assert not link.isEnabled()


def test_copy_details_puts_versions_and_folders_on_the_clipboard(
    dialog: AboutDialog, qtbot, tmp_path: Path
):
    button = dialog.findChild(QPushButton, "copyDetails")
    assert button is not None
    button.click()
    copied = QGuiApplication.clipboard().text()
    assert f"civdesk: {__version__} (from source)" in copied
    assert f"Qt: {qVersion()}" in copied
    assert f"Data folder: {(tmp_path / 'data').resolve()}" in copied


def test_close_rejects(dialog: AboutDialog, qtbot):
    dialog.show()
    qtbot.waitExposed(dialog)
    with qtbot.waitSignal(dialog.rejected, timeout=1000):
        dialog.reject()
    assert not dialog.isVisible()
