"""Help ▸ About: what this build is and where it keeps its files.

Everything a bug report needs is here and one click away ("Copy details"): the civdesk,
Python, Qt and PySide6 versions, the platform, and the data/config/cache/log folders, each
with a link that opens it in the file manager.
"""

from __future__ import annotations

import html
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import PySide6
from PySide6.QtCore import Qt, QUrl, qVersion
from PySide6.QtGui import QDesktopServices, QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from civdesk import APP_NAME, __version__
from civdesk.paths import AppPaths, app_paths
from civdesk.ui.icons import app_icon

CIVITAI_URL = "https://civitai.com"
LICENSE_NAME = "MIT License"
ICON_SIZE = 96

UrlOpener = Callable[[QUrl], object]


def build_details() -> list[tuple[str, str]]:
    """Versions of civdesk and what it runs on, in the order the dialog shows them."""
    build = "app bundle" if getattr(sys, "frozen", False) else "from source"
    return [
        ("civdesk", f"{__version__} ({build})"),
        ("Python", platform.python_version()),
        ("Qt", qVersion()),
        ("PySide6", PySide6.__version__),
        ("System", platform.platform(terse=True)),
    ]


def folder_rows(paths: AppPaths) -> list[tuple[str, Path]]:
    return [
        ("Data", paths.data),
        ("Settings", paths.config),
        ("Cache", paths.cache),
        ("Logs", paths.logs),
    ]


class AboutDialog(QDialog):
    """The About box. ``paths`` defaults to this run's folders (``$CIVDESK_DATA_DIR`` or
    the platform's); the main window passes ``core.paths`` so ``--data-dir`` shows too.
    ``open_url`` opens a folder link (the desktop's file manager by default)."""

    def __init__(
        self,
        parent: QWidget | None = None,
        paths: AppPaths | None = None,
        *,
        open_url: UrlOpener = QDesktopServices.openUrl,
    ) -> None:
        super().__init__(parent)
        self._paths = paths or app_paths()
        self._open_url = open_url
        self.setObjectName("aboutDialog")
        self.setWindowTitle(f"About {APP_NAME}")
        self.setWindowIcon(app_icon())
        self.setMinimumWidth(480)

        layout = QVBoxLayout(self)
        layout.setSpacing(14)
        layout.addLayout(self._header())
        layout.addLayout(self._details_grid())
        layout.addWidget(_section_title("Folders"))
        layout.addLayout(self._folders_grid())
        layout.addWidget(self._buttons())

    # -- Parts -----------------------------------------------------------------------

    def _header(self) -> QHBoxLayout:
        icon = QLabel()
        icon.setPixmap(app_icon().pixmap(ICON_SIZE, ICON_SIZE))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)

        name = QLabel(APP_NAME)
        name.setObjectName("aboutName")
        font = name.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        name.setFont(font)

        version = QLabel(f"Version {html.escape(__version__)}")
        version.setObjectName("aboutVersion")
        version.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        blurb = QLabel(
            "A desktop library and download manager for Stable Diffusion models from "
            f'<a href="{CIVITAI_URL}">Civitai</a>. '
            "civdesk is an independent project, not affiliated with Civitai."
        )
        blurb.setObjectName("aboutBlurb")
        blurb.setWordWrap(True)
        blurb.setOpenExternalLinks(True)

        license_label = QLabel(f"Free software under the {LICENSE_NAME}.")
        license_label.setObjectName("aboutLicense")

        text = QVBoxLayout()
        text.setSpacing(4)
        for widget in (name, version, blurb, license_label):
            text.addWidget(widget)
        text.addStretch(1)

        row = QHBoxLayout()
        row.setSpacing(18)
        row.addWidget(icon)
        row.addLayout(text, 1)
        return row

    def _details_grid(self) -> QGridLayout:
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        for row, (label, value) in enumerate(build_details()):
            grid.addWidget(_dim(label), row, 0)
            grid.addWidget(_selectable(value), row, 1)
        grid.setColumnStretch(1, 1)
        return grid

    def _folders_grid(self) -> QGridLayout:
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        for row, (label, folder) in enumerate(folder_rows(self._paths)):
            grid.addWidget(_dim(label), row, 0)
            grid.addWidget(_selectable(str(folder)), row, 1)
            grid.addWidget(self._open_link(label, folder), row, 2)
        grid.setColumnStretch(1, 1)
        return grid

    def _open_link(self, label: str, folder: Path) -> QLabel:
        link = QLabel()
        link.setObjectName(f"open{label}Folder")
        if folder.is_dir():
            url = QUrl.fromLocalFile(str(folder))
            link.setText(f'<a href="{html.escape(url.toString())}">Open</a>')
            link.setToolTip(f"Show {folder} in the file manager")
            link.linkActivated.connect(lambda href: self._open_url(QUrl(href)))
        else:
            # Created on first use; a link to a missing folder would just fail.
            link.setText("not created yet")
            link.setEnabled(False)
        return link

    def _buttons(self) -> QDialogButtonBox:
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = QPushButton("Copy details")
        copy.setObjectName("copyDetails")
        copy.setToolTip("Copy versions and folders, e.g. for a bug report")
        copy.clicked.connect(self.copy_details)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        return buttons

    # -- Actions ---------------------------------------------------------------------

    def details_text(self) -> str:
        """Plain text of everything the dialog shows, for the clipboard."""
        lines = [f"{label}: {value}" for label, value in build_details()]
        lines += [f"{label} folder: {folder}" for label, folder in folder_rows(self._paths)]
        return "\n".join(lines)

    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(self.details_text())


def _section_title(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionTitle")
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


def _dim(text: str) -> QLabel:
    label = QLabel(text)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # the theme's muted colour
    return label


def _selectable(text: str) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label
