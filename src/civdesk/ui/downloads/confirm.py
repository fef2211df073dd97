"""The question asked before downloading a file Civitai's own scans flagged as dangerous."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

FLAGGED_TITLE = "Civitai flagged this file"


def confirm_flagged(parent: QWidget, reason: str) -> bool:
    """Whether the user wants the file anyway; ``reason`` is what the scan found (the
    core's :attr:`ModelFile.danger`). No is the default, so Enter never downloads it."""
    answer = QMessageBox.warning(
        parent, FLAGGED_TITLE,
        f"{reason.rstrip('.')}.\n\nA file like this can run any program on your computer "
        "when a UI loads it. Download it only if you trust its creator.\n\nDownload it anyway?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes
