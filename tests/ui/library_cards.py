"""Builders shared by the library model and card delegate tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication, QStyle, QStyleOptionViewItem

from civdesk.core.library.repository import LibraryEntry
from civdesk.ui.library.delegate import CardDelegate
from civdesk.ui.library.model import LibraryFilterProxy, LibraryModel, LibrarySnapshot, Role


def numbered_entry(i: int, name: str | None = None, kind: str = "LORA") -> LibraryEntry:
    """Entry ``i`` of a synthetic library: path, hash, ids and added time all follow ``i``."""
    return LibraryEntry(
        path=f"/lib/{i:05d}.safetensors", file_name=f"{i:05d}.safetensors", size=i,
        sha256=f"{i:064X}", model_id=i, version_id=10_000 + i,
        model_name=name or f"Model {i:05d}", version_name="v1", type=kind, base_model=None,
        trained_words=(), preview=None, info=None,
        added_at=datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=i),
        identified=True,
    )  # fmt: skip


def paint_card(
    delegate: CardDelegate, index: Any, state: QStyle.StateFlag = QStyle.StateFlag.State_Enabled
) -> QImage:
    """One card as the delegate paints it, on black, at the card size."""
    size = CardDelegate.card_size()
    image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.black)
    option = QStyleOptionViewItem()
    option.rect = QRect(0, 0, size.width(), size.height())
    option.palette = QApplication.palette()
    option.state = state
    painter = QPainter(image)
    delegate.paint(painter, option, index)
    painter.end()
    return image


def cards_of(entries: tuple[LibraryEntry, ...], cache: Path, qtmodeltester: Any
             ) -> tuple[LibraryFilterProxy, dict[str, QImage]]:
    """A filter proxy over these entries (checked by qtmodeltester) and each entry's card
    as the delegate paints it, by path."""
    from civdesk.ui.thumbnails import ThumbnailLoader

    model = LibraryModel()
    model.set_snapshot(LibrarySnapshot(entries))
    proxy = LibraryFilterProxy()
    proxy.setSourceModel(model)
    qtmodeltester.check(proxy)
    loader = ThumbnailLoader(cache)
    try:
        delegate = CardDelegate(loader, snapshot=lambda: model.snapshot)
        cards = {proxy.index(r, 0).data(Role.Path): paint_card(delegate, proxy.index(r, 0))
                 for r in range(proxy.rowCount())}
    finally:
        loader.cancel_pending()
    return proxy, cards
