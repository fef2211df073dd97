"""Search results as an item model: pages of models appended as the user scrolls."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)

from civdesk.core.civitai.schema import Model

AnyIndex = QModelIndex | QPersistentModelIndex

#: What the library holds of a model, for the card badge.
NOT_OWNED, DOWNLOADED, UPDATE = "", "downloaded", "update"


class ResultRole(IntEnum):
    MODEL = Qt.ItemDataRole.UserRole + 1
    MODEL_ID = Qt.ItemDataRole.UserRole + 2
    TYPE = Qt.ItemDataRole.UserRole + 3
    BASE_MODEL = Qt.ItemDataRole.UserRole + 4
    THUMBNAIL_URL = Qt.ItemDataRole.UserRole + 5  # None: the model has no still image
    NSFW = Qt.ItemDataRole.UserRole + 6
    LIBRARY_STATE = Qt.ItemDataRole.UserRole + 7  # NOT_OWNED | DOWNLOADED | UPDATE
    DOWNLOADS = Qt.ItemDataRole.UserRole + 8
    LIKES = Qt.ItemDataRole.UserRole + 9
    HIDDEN_PREVIEWS = Qt.ItemDataRole.UserRole + 10  # True when NSFW images were held back
    PREVIEW_BLURRED = Qt.ItemDataRole.UserRole + 11  # THUMBNAIL_URL is NSFW: show it blurred
    EARLY_ACCESS = Qt.ItemDataRole.UserRole + 12  # the newest version's "early access until …"


def library_state(model: Model, installed: Mapping[int, set[int]]) -> str:
    """Downloaded when any version is on disk; Update when a newer one than those exists.

    Versions come newest first, so an update exists exactly when the newest version is not
    among the ones on disk.
    """
    on_disk = installed.get(model.id)
    if not on_disk:
        return NOT_OWNED
    latest = model.latest_version
    return UPDATE if latest is not None and latest.id not in on_disk else DOWNLOADED


def card_tooltip(model: Model, installed: Mapping[int, set[int]]) -> str:
    """The card's name, and what its badge means: which newer version there is, and until
    when it is in early access (Civitai refuses its download until then)."""
    state = library_state(model, installed)
    latest = model.latest_version
    if state == UPDATE and latest is not None:
        name = latest.name or f"version {latest.id}"
        until = latest.early_access_until()
        suffix = f" (early access until {until})" if until else ""
        return f"{model.name}\nUpdate available: {name}{suffix}"
    if state == DOWNLOADED:
        return f"{model.name}\nThe newest version is in your library"
    early_access = latest.early_access_text() if latest is not None else None
    if early_access:
        return (f"{model.name}\nIn {early_access}: Civitai lets only those who unlocked it "
                "download it")
    return model.name


#: Civitai image URLs carry their transform in one path segment (``/original=true/``,
#: ``/width=450/``); swapping it asks the CDN for a small rendition instead of the original.
_VARIANT = re.compile(r"/(?:original=true|width=\d+)(?:,[^/]*)?/")
THUMBNAIL_WIDTH = 450


def sized_image_url(url: str, width: int = THUMBNAIL_WIDTH) -> str:
    """``url`` asking for a ``width``-pixel rendition (unchanged when it has no variant)."""
    return _VARIANT.sub(f"/width={width}/", url, count=1)


@dataclass(frozen=True)
class CardPreview:
    """The image a card shows, and whether the NSFW setting wants it blurred."""

    url: str
    blurred: bool = False


def card_preview(model: Model, allow_nsfw: bool) -> CardPreview | None:
    """The first still image (newest version first) the setting allows, sharp; else, when
    every image is NSFW and NSFW is not allowed, the first still image to be shown blurred
    (the card keeps its place and its colours instead of going blank). None: no still image.
    """
    for version in model.versions:
        image = version.preview_image(allow_nsfw)
        if image is not None:
            return CardPreview(sized_image_url(image.url))
    if not allow_nsfw:
        for version in model.versions:
            image = version.preview_image(True)
            if image is not None:
                return CardPreview(sized_image_url(image.url), blurred=True)
    return None


def preview_url(model: Model, allow_nsfw: bool) -> str | None:
    """The thumbnail URL of :func:`card_preview` (blurred or not)."""
    preview = card_preview(model, allow_nsfw)
    return preview.url if preview is not None else None


def has_hidden_previews(model: Model, allow_nsfw: bool) -> bool:
    return not allow_nsfw and any(not i.is_sfw for v in model.versions for i in v.images)


class SearchResultsModel(QAbstractListModel):
    """Models found so far, in the order Civitai sent them (duplicates across pages dropped)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._models: list[Model] = []
        self._ids: set[int] = set()
        self._installed: dict[int, set[int]] = {}
        self._allow_nsfw = False

    # -- changes ------------------------------------------------------------------------------

    def clear(self) -> None:
        self.beginResetModel()
        self._models = []
        self._ids = set()
        self.endResetModel()

    def append_page(self, models: Iterable[Model]) -> int:
        """Append the models not shown yet; returns how many were added."""
        fresh = []
        for model in models:
            if model.id not in self._ids:
                self._ids.add(model.id)
                fresh.append(model)
        if fresh:
            first = len(self._models)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            self._models.extend(fresh)
            self.endInsertRows()
        return len(fresh)

    def set_installed(self, installed: Mapping[int, set[int]]) -> None:
        """What the library holds (model id -> version ids); updates the badges."""
        self._installed = {k: set(v) for k, v in installed.items()}
        self._all_changed([ResultRole.LIBRARY_STATE])

    def set_allow_nsfw(self, allow: bool) -> None:
        if allow != self._allow_nsfw:
            self._allow_nsfw = allow
            self._all_changed(
                [ResultRole.THUMBNAIL_URL, ResultRole.PREVIEW_BLURRED, ResultRole.HIDDEN_PREVIEWS]
            )

    def _all_changed(self, roles: list[int]) -> None:
        if self._models:
            self.dataChanged.emit(self.index(0), self.index(len(self._models) - 1), roles)

    # -- reading ------------------------------------------------------------------------------

    @property
    def installed(self) -> dict[int, set[int]]:
        return self._installed

    def model_at(self, row: int) -> Model:
        return self._models[row]

    def row_of(self, model_id: int) -> int | None:
        return next((i for i, m in enumerate(self._models) if m.id == model_id), None)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._models)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._models):
            return None
        model = self._models[index.row()]
        latest = model.latest_version
        if role == Qt.ItemDataRole.DisplayRole:
            return model.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return card_tooltip(model, self._installed)
        if role == ResultRole.MODEL:
            return model
        if role == ResultRole.MODEL_ID:
            return model.id
        if role == ResultRole.TYPE:
            return model.type
        if role == ResultRole.BASE_MODEL:
            return latest.base_model if latest is not None else None
        if role == ResultRole.THUMBNAIL_URL:
            return preview_url(model, self._allow_nsfw)
        if role == ResultRole.PREVIEW_BLURRED:
            preview = card_preview(model, self._allow_nsfw)
            return preview is not None and preview.blurred
        if role == ResultRole.NSFW:
            return model.nsfw
        if role == ResultRole.LIBRARY_STATE:
            return library_state(model, self._installed)
        if role == ResultRole.EARLY_ACCESS:
            return latest.early_access_text() if latest is not None else None
        if role == ResultRole.DOWNLOADS:
            return model.download_count
        if role == ResultRole.LIKES:
            return model.thumbs_up_count
        if role == ResultRole.HIDDEN_PREVIEWS:
            return has_hidden_previews(model, self._allow_nsfw)
        return None

    def roleNames(self) -> dict[int, QByteArray]:
        names = super().roleNames()
        names.update({role.value: QByteArray(role.name.lower().encode()) for role in ResultRole})
        return names
