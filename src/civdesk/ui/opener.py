"""Open a folder or a web page with the desktop, and say so when nothing could.

``QDesktopServices.openUrl`` answers False when no program takes the address (no file
manager on a bare window manager, no browser set): "Show in folder" and "Open on Civitai"
then did nothing, silently. :class:`Opener` tells the user, with the path or the link and a
button that copies it, in a dialog that does not block the window.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMessageBox, QWidget

UrlOpener = Callable[[QUrl], object]


class Opener(QObject):
    """Opens addresses for one window; ``open_url`` is the desktop's (tests give another)."""

    #: The address nothing could open (the path of a local folder, else the link).
    failed = Signal(str)

    def __init__(self, parent: QWidget, open_url: UrlOpener = QDesktopServices.openUrl) -> None:
        super().__init__(parent)
        self._window = parent
        self.open_url = open_url

    def open(self, url: QUrl, what: str) -> bool:
        """Open ``url`` (``what`` names it for people: "the folder", "the model's page")."""
        if self.open_url(url):
            return True
        text = url.toLocalFile() if url.isLocalFile() else url.toString()
        box = QMessageBox(QMessageBox.Icon.Information, "Nothing could open it",
                          f"No program on this computer opened {what}:\n{text}",
                          QMessageBox.StandardButton.Close, self._window)
        box.setObjectName("openFailed")
        copy = box.addButton("Copy", QMessageBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(text))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # not exec(): the window goes on
        self.failed.emit(text)
        return False

    def open_link(self, href: str) -> bool:
        """For a label's ``linkActivated``: a web address."""
        return self.open(QUrl(href), "the link")
