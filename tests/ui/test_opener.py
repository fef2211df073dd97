"""Show in folder and Open on Civitai say so when nothing could open the address."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox, QWidget

from civdesk.ui.opener import Opener


def shown_box(parent: QWidget) -> QMessageBox | None:
    return parent.findChild(QMessageBox, "openFailed")


def test_an_address_nothing_opens_is_shown_with_a_copy_button(qtbot, tmp_path: Path) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    opener = Opener(window, open_url=lambda url: False)
    with qtbot.waitSignal(opener.failed) as failed:
        assert not opener.open(QUrl.fromLocalFile(str(tmp_path)), "the folder")
    assert failed.args == [str(tmp_path)]
    box = shown_box(window)
    assert box is not None and box.isVisible()
    assert str(tmp_path) in box.text() and "the folder" in box.text()
    copy = next(b for b in box.buttons() if b.text() == "Copy")
    copy.click()
    assert QGuiApplication.clipboard().text() == str(tmp_path)
    box.close()


def test_an_address_that_opens_shows_nothing(qtbot) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    opened: list[str] = []
    opener = Opener(window, open_url=lambda url: opened.append(url.toString()) or True)
    assert opener.open(QUrl("https://civitai.com/models/1"), "the model's page")
    assert opened == ["https://civitai.com/models/1"] and shown_box(window) is None
