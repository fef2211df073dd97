"""The Civitai browser: search with filters, an endless grid of cards, and a model's detail.

Every request runs in the ``network`` pool (``ui.tasks``); the page only shows outcomes. A
failure (offline, 401, 429…) becomes a banner with Retry above the results, which stay as
they were, so the window never freezes and nothing already loaded is lost.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    QUrl,
    Signal,
    SignalInstance,
    Slot,
)
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from civdesk.core.civitai.errors import AuthRequired, KeyRefused, NetworkError, RateLimited
from civdesk.core.civitai.generation import GenerationParams
from civdesk.core.civitai.schema import (
    MODEL_TYPES,
    PERIODS,
    SORTS,
    Image,
    Model,
    ModelVersion,
    SearchPage,
    SearchQuery,
)
from civdesk.core.downloads.queue import TaskSnapshot, folder_type
from civdesk.core.errors import CivdeskError
from civdesk.core.placement import chosen_download_folder
from civdesk.core.secret_text import redact
from civdesk.ui.browser.delegate import CARD_WIDTH, CardDelegate
from civdesk.ui.browser.detail import ModelDetail
from civdesk.ui.browser.empty import BrowserEmptyState
from civdesk.ui.browser.grid import ResultsView
from civdesk.ui.browser.images import ImageViewer
from civdesk.ui.browser.model import DOWNLOADED, ResultRole, SearchResultsModel, sized_image_url
from civdesk.ui.browser.worker import BrowserClients
from civdesk.ui.downloads.confirm import confirm_flagged
from civdesk.ui.opener import Opener
from civdesk.ui.tasks import TaskHandle, run_task
from civdesk.ui.thumbnails import ThumbnailLoader

if TYPE_CHECKING:
    from civdesk.core.context import Core

log = logging.getLogger(__name__)

ALL = "All"
#: What a filter item says where the API's value is not words (``AllTime``) or too terse.
FILTER_LABELS = {
    ("typeFilter", ALL): "All types",
    ("baseModelFilter", ALL): "All base models",
    ("periodFilter", "AllTime"): "All time",
    ("periodFilter", "Year"): "Past year",
    ("periodFilter", "Month"): "Past month",
    ("periodFilter", "Week"): "Past week",
    ("periodFilter", "Day"): "Past day",
}
#: Common base models (section 3.3 of the API notes); the API takes any string.
BASE_MODELS = (
    "SD 1.5", "SDXL 1.0", "Pony", "Illustrious", "NoobAI", "Flux.1 D", "Flux.1 S", "SD 3.5",
    "SD 2.1", "SDXL Turbo", "SD 1.5 LCM", "Other",
)  # fmt: skip
#: Load the next page when the scroll bar is this close to its end (pixels).
NEAR_BOTTOM = 300


def display_folder(folder: Path) -> str:
    """``/home/me/models/Lora`` as ``~/models/Lora/``: short, and plainly a folder."""
    text = str(folder)
    home = str(Path.home())
    if text == home or text.startswith(home + os.sep):
        text = "~" + text[len(home):]
    return text.rstrip(os.sep) + os.sep


def params_of(version: ModelVersion, image: Image) -> GenerationParams | None:
    """The parameters the /model-versions form of ``version`` gives ``image`` (matched by
    its URL: that form has no image ids, and the rendition in the URL differs)."""
    wanted = sized_image_url(image.url)
    return next((i.meta for i in version.images if sized_image_url(i.url) == wanted), None)


def error_text(exc: BaseException) -> str:
    """A failed request in words, with what to do about it."""
    if isinstance(exc, KeyRefused):
        return f"{exc}, then retry."  # the message says what to do with the key already
    if isinstance(exc, AuthRequired):
        return f"{exc} — set your Civitai API key in Settings, then retry."
    if isinstance(exc, RateLimited):
        wait = f" in {round(exc.retry_after)} s" if exc.retry_after else " in a moment"
        return f"Civitai is rate limiting requests: retry{wait}."
    if isinstance(exc, NetworkError):
        return f"{exc}."
    if isinstance(exc, CivdeskError):
        return str(exc)
    return redact(f"Unexpected error ({type(exc).__name__}: {exc}); please report it.")


#: The search box's least width, in pixels.
SEARCH_MIN_WIDTH = 150


class ErrorBanner(QFrame):
    """A message with a Retry button, shown above the content it concerns."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        # Its colours are the stylesheet's (QFrame#errorBanner): one place, both themes.
        self.label = QLabel()
        self.label.setObjectName("errorBannerText")
        self.label.setWordWrap(True)
        self.retry_button = QPushButton("Retry")
        self.retry_button.setObjectName("retryButton")
        self.retry_button.clicked.connect(self._retry_clicked)
        layout = QHBoxLayout(self)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.retry_button)
        self._retry: Callable[[], None] | None = None
        self.hide()

    def show_error(self, text: str, retry: Callable[[], None] | None) -> None:
        self.label.setText(text)
        self._retry = retry
        self.retry_button.setVisible(retry is not None)
        self.show()

    @Slot()
    def _retry_clicked(self) -> None:
        retry, self._retry = self._retry, None
        self.hide()
        if retry is not None:
            retry()


class OwnedFilter(QSortFilterProxyModel):
    """Hides the models the library already holds (when switched on).

    A model with a newer version than the ones on disk stays: the user does not have what
    Civitai offers now, and the Update badge is exactly what they are looking for.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._hide_owned = False

    def set_hide_owned(self, hide: bool) -> None:
        self.refilter(lambda: setattr(self, "_hide_owned", hide))

    def refilter(self, change: Callable[[], None] = lambda: None) -> None:
        """Apply ``change`` to what the filter accepts, and re-filter."""
        if hasattr(self, "beginFilterChange"):  # Qt ≥ 6.10 deprecates invalidateFilter()
            self.beginFilterChange()
            change()
            self.endFilterChange()
        else:
            change()
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int,
                         source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        if not self._hide_owned:
            return True
        index = self.sourceModel().index(source_row, 0, source_parent)
        return index.data(ResultRole.LIBRARY_STATE) != DOWNLOADED


class Downloads(Protocol):
    """Where Download clicks go: the downloads worker, or the key gate in front of it."""

    @property
    def task_finished(self) -> SignalInstance: ...

    def add(self, version_id: int, file_id: int | None = None, dest_dir: str | None = None,
            *, version: ModelVersion | None = None, allow_flagged: bool = False) -> object: ...


class BrowserPage(QWidget):
    """Search Civitai, page through results, open a model, ask for downloads."""

    search_requested = Signal(object)  # SearchQuery (its first page)
    page_loaded = Signal(int)  # models added by the page that just arrived
    search_failed = Signal(str)  # the banner's text
    model_opened = Signal(int)  # model id
    #: version id, file id or None (primary file), the user chose a flagged file, and the
    #: folder the user chose for it (str) or None (where the library keeps its type)
    download_requested = Signal(int, object, bool, object)
    #: version id: show that version's file on the Models page
    show_in_library_requested = Signal(int)

    #: Models asked for per request.
    page_size = 20

    def __init__(
        self, core: Core, thumbnails: ThumbnailLoader, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("browserPage")
        self.core = core
        self.opener = Opener(self)
        #: Asks the user for a folder (replaced in tests): the start folder -> the chosen
        #: one, "" when cancelled.
        self.ask_folder: Callable[[str], str] = lambda start: QFileDialog.getExistingDirectory(
            self, "Download this model into", start)
        #: The folder the user chose for downloads of the model shown (None: the usual one).
        self.chosen_folder: Path | None = None
        #: The folder shown under Download (what the queue will choose by itself).
        self.shown_folder: Path | None = None
        self._params_versions: dict[int, ModelVersion] = {}
        self._target_of: tuple[int | None, int | None] = (None, None)  # model, version ids
        self.thumbnails = thumbnails
        self.clients = BrowserClients(core)
        self.results = SearchResultsModel(self)
        self.visible_results = OwnedFilter(self)
        self.visible_results.setSourceModel(self.results)
        self._query: SearchQuery | None = None
        self._cursor: str | None = None
        self._has_more = False
        self._search: TaskHandle | None = None
        self._detail_load: TaskHandle | None = None
        # The banner tells of a model page's failure, not the search's: it goes with the page.
        self._banner_of_detail = False
        self._build()
        self.results.set_allow_nsfw(self.nsfw_box.isChecked())
        thumbnails.thumbnail_ready.connect(self.view.viewport().update)
        self.refresh_library_state()

    # -- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.search_box = QLineEdit()
        self.search_box.setObjectName("searchBox")
        self.search_box.setPlaceholderText("Search Civitai models…")
        self.search_box.setClearButtonEnabled(True)
        # In a narrow window the filters give way, not the box one types into.
        self.search_box.setMinimumWidth(SEARCH_MIN_WIDTH)
        self.search_box.returnPressed.connect(self.search)
        self.type_combo = self._combo("typeFilter", (ALL, *MODEL_TYPES), "Model type")
        self.base_combo = self._combo("baseModelFilter", (ALL, *BASE_MODELS), "Base model")
        self.sort_combo = self._combo("sortFilter", SORTS, "Sort order")
        self.period_combo = self._combo("periodFilter", PERIODS, "Period")
        self.nsfw_box = QCheckBox("NSFW")
        self.nsfw_box.setObjectName("nsfwFilter")
        self.nsfw_box.setToolTip("Include mature models and show their previews")
        self.nsfw_box.setChecked(bool(getattr(self.core.settings, "allow_nsfw", False)))
        self.nsfw_box.toggled.connect(self._nsfw_toggled)
        self.hide_owned_box = QCheckBox("Hide models I have")
        self.hide_owned_box.setObjectName("hideOwned")
        self.hide_owned_box.setToolTip(
            "Hide the models whose newest version is in your library (updates stay visible)"
        )
        self.hide_owned_box.toggled.connect(self.visible_results.set_hide_owned)
        self.hide_owned_box.toggled.connect(self._fill_view)
        # The count follows what the filter hides: toggling it, or a download that makes a
        # model "had", changes how many of the results are on screen.
        for changed in (self.visible_results.rowsInserted, self.visible_results.rowsRemoved,
                        self.visible_results.modelReset, self.visible_results.layoutChanged):
            changed.connect(self._show_count)
        bar.addWidget(self.search_box, 1)
        bar.addWidget(self.nsfw_box)
        bar.addWidget(self.hide_owned_box)
        layout.addLayout(bar)
        # The filters on a row of their own, each as wide as its longest entry: in one row
        # with the search box they were cut to a few letters ("All base mo…") at 900 px.
        filters = QHBoxLayout()
        for combo in (self.type_combo, self.base_combo, self.sort_combo, self.period_combo):
            filters.addWidget(combo)
        filters.addStretch(1)
        layout.addLayout(filters)

        self.banner = ErrorBanner()
        layout.addWidget(self.banner)

        self.stack = QStackedWidget()
        layout.addWidget(self.stack, 1)

        results_page = QWidget()
        results_layout = QVBoxLayout(results_page)
        results_layout.setContentsMargins(0, 0, 0, 0)
        self.empty_state = BrowserEmptyState(self.core)
        self.empty_state.top_models_requested.connect(self.search)
        results_layout.addWidget(self.empty_state, 1)
        self.view = ResultsView()
        self.view.hide()  # until the first search: the empty state says what to do
        self.view.menu_requested.connect(self.show_card_menu)
        self.view.setModel(self.visible_results)
        self.view.setItemDelegate(CardDelegate(self.thumbnails, self.view))
        # Cells share the row's width (a gap of 8 px around each card at the least).
        self.view.set_card_size(QSize(CARD_WIDTH + 8,
                                      CardDelegate.card_height(self.view.font()) + 8))
        # activated: a double click (or one click, by platform style) and Enter.
        self.view.activated.connect(self._card_activated)
        scroll = self.view.verticalScrollBar()
        scroll.valueChanged.connect(self._maybe_load_more)
        scroll.rangeChanged.connect(self._maybe_load_more)
        self.status = QLabel()  # the empty state says what to do
        self.status.setObjectName("browserStatus")
        results_layout.addWidget(self.view, 1)
        results_layout.addWidget(self.status)
        self.stack.addWidget(results_page)

        self.detail = ModelDetail(self.thumbnails, lambda: self.core.sites)
        self.detail.back_requested.connect(self.show_results)
        for keys in (QKeySequence(Qt.Key.Key_Escape), QKeySequence(QKeySequence.StandardKey.Back)):
            back = QShortcut(keys, self.detail)
            back.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            back.activated.connect(self.show_results)
        self.detail.download_requested.connect(self._download_from_detail)
        self.detail.version_shown.connect(self._show_target)
        self.detail.change_target_requested.connect(self.change_target)
        self.detail.open_url_requested.connect(
            lambda href: self.opener.open(QUrl(href), "the model's page"))
        self.detail.params_lookup = self._lookup_params
        self.detail.show_in_library_requested.connect(self.show_in_library_requested)
        self.stack.addWidget(self.detail)

        for combo in (self.type_combo, self.base_combo, self.sort_combo, self.period_combo):
            combo.currentIndexChanged.connect(self._filters_changed)

    def _combo(self, name: str, items: tuple[str, ...], tip: str) -> QComboBox:
        """A filter: each item shows its words and carries the API's value as its data."""
        combo = QComboBox()
        combo.setObjectName(name)
        combo.setToolTip(tip)
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for value in items:
            combo.addItem(FILTER_LABELS.get((name, value), value), value)
        return combo

    # -- wiring to the downloads ------------------------------------------------------------

    def connect_downloads(self, worker: Downloads) -> None:
        """Send Download clicks to the dock's worker; refresh badges when a file lands."""
        self.download_requested.connect(
            lambda version_id, file_id, allow_flagged, folder: worker.add(
                version_id, file_id, folder, version=self._version_with_model(version_id),
                allow_flagged=allow_flagged,
            )
        )
        worker.task_finished.connect(self._download_finished)

    def _version_with_model(self, version_id: int) -> ModelVersion | None:
        """The version in its /model-versions form (names for the dock right away), from
        the model shown or a card."""
        models = [self.detail.model] + [self.results.model_at(row)
                                        for row in range(self.results.rowCount())]
        for model in models:
            version = model.version_by_id(version_id) if model is not None else None
            if model is not None and version is not None:
                return model.with_version_model(version)
        return None

    @Slot(object)
    def _download_finished(self, task: TaskSnapshot) -> None:
        if task.state == "completed":
            self.refresh_library_state()

    @Slot()
    def refresh_library_state(self) -> None:
        """Re-read which versions are on disk (in the db pool) and update the badges."""
        run_task(self.core.library.installed_versions, on_result=self._installed_loaded,
                 pool="db", name="installed_versions", owner=self)

    def _installed_loaded(self, installed: dict[int, set[int]]) -> None:
        self.results.set_installed(installed)
        self.visible_results.refilter()
        if self.detail.model is not None:
            self.detail.set_installed(installed.get(self.detail.model.id, set()))

    # -- searching ----------------------------------------------------------------------------

    def current_query(self) -> SearchQuery:
        def chosen(combo: QComboBox) -> tuple[str, ...]:
            value = combo.currentData()
            return () if value == ALL else (value,)

        return SearchQuery(
            query=self.search_box.text().strip(),
            types=chosen(self.type_combo),
            base_models=chosen(self.base_combo),
            sort=self.sort_combo.currentData(),
            period=self.period_combo.currentData(),
            nsfw=self.nsfw_box.isChecked(),
            limit=self.page_size,
        )

    @Slot()
    def search(self) -> None:
        """Start a new search from the box and filters (drops the current results)."""
        query = self.current_query()
        if self._search is not None:
            self._search.cancel()
        self._query = query
        self._cursor = None
        self._has_more = False
        self.results.clear()
        self.banner.hide()
        self.empty_state.hide()
        self.view.show()
        self.show_results()
        self.search_requested.emit(query)
        self._fetch(query)

    @property
    def loading(self) -> bool:
        return self._search is not None and not self._search.done

    @property
    def has_more(self) -> bool:
        return self._has_more

    @Slot()
    def load_more(self) -> None:
        """Fetch the next page of the current search, unless one is on its way."""
        if self._query is None or not self._has_more or self.loading or self.banner.isVisible():
            return
        from dataclasses import replace

        self._fetch(replace(self._query, cursor=self._cursor))

    def _fetch(self, query: SearchQuery) -> None:
        self.status.setText("Searching Civitai…" if query.cursor is None else "Loading more…")
        self._search = run_task(
            lambda: self.clients.get(mature=query.nsfw).search(query),
            on_result=self._page_arrived,
            on_error=lambda exc: self._search_failed(query, exc),
            pool="network",
            name="civitai-search",
            owner=self,
        )  # fmt: skip

    def _page_arrived(self, page: SearchPage) -> None:
        added = self.results.append_page(page.items)
        # A page of repeats only (a cursor that went in circles) ends the paging.
        self._has_more = page.has_more and (added > 0 or not page.items)
        self._cursor = page.next_cursor
        self.status.setText(self.count_text())
        self.page_loaded.emit(added)
        QTimer.singleShot(0, self, self._fill_view)  # dropped if the page dies first

    def count_text(self) -> str:
        """How many results there are, and how many of them "Hide models I have" hides."""
        total = self.results.rowCount()
        if total == 0:
            return "No models match this search"
        shown = self.visible_results.rowCount()
        more = " — scroll for more" if self._has_more else ""
        noun = "model" if total == 1 else "models"
        if shown == total:
            return f"{total} {noun}{more}"
        return f"{shown} of {total} {noun} shown, {total - shown} you have hidden{more}"

    @Slot()
    def _show_count(self) -> None:
        if self._query is not None and not self.loading and not self.banner.isVisible():
            self.status.setText(self.count_text())

    def _search_failed(self, query: SearchQuery, exc: BaseException) -> None:
        text = error_text(exc)
        self.status.setText("The search failed")
        self._banner_of_detail = False
        self.banner.show_error(text, retry=lambda: self._fetch(query))
        self.search_failed.emit(text)

    @Slot()
    def _filters_changed(self) -> None:
        if self._query is not None:
            self.search()

    @Slot(bool)
    def _nsfw_toggled(self, allowed: bool) -> None:
        self.results.set_allow_nsfw(allowed)
        if self._query is not None:
            self.search()

    @Slot()
    def _maybe_load_more(self) -> None:
        scroll = self.view.verticalScrollBar()
        if scroll.maximum() - scroll.value() <= NEAR_BOTTOM and scroll.maximum() > 0:
            self.load_more()

    @Slot()
    def _fill_view(self) -> None:
        """Keep loading while the results do not fill the view (nothing to scroll yet)."""
        if self.stack.currentIndex() == 0 and self.view.verticalScrollBar().maximum() == 0:
            self.load_more()

    # -- detail -------------------------------------------------------------------------------

    @Slot(QModelIndex)
    def _card_activated(self, index: QModelIndex) -> None:
        model = index.data(ResultRole.MODEL)
        if model is not None:
            self.open_model(model)

    def open_model(self, model: Model) -> None:
        """Show ``model`` at once, then refresh it with the full record from Civitai."""
        if self.detail.model is None or self.detail.model.id != model.id:
            self.chosen_folder = None  # a folder chosen for another model is not this one's
        self.detail.show_model(
            model, self.results.installed.get(model.id, set()), self.nsfw_box.isChecked()
        )
        self.stack.setCurrentWidget(self.detail)
        self.model_opened.emit(model.id)
        if self._detail_load is not None:
            self._detail_load.cancel()
        nsfw = self.nsfw_box.isChecked()  # from the site its search went to
        self._detail_load = run_task(
            lambda: self.clients.get(mature=nsfw).get_model(model.id),
            on_result=self._full_model_arrived,
            on_error=lambda exc: self._detail_failed(model, exc),
            pool="network", name="civitai-model", owner=self,
        )  # fmt: skip

    def _detail_failed(self, model: Model, exc: BaseException) -> None:
        self._banner_of_detail = True
        self.banner.show_error(f"Could not load all details of {model.name}: {error_text(exc)}",
                               retry=lambda: self.open_model(model))

    def _hide_detail_banner(self) -> None:
        if self._banner_of_detail:
            self._banner_of_detail = False
            self.banner.hide()

    def _full_model_arrived(self, model: Model) -> None:
        self._hide_detail_banner()  # a Retry that worked
        if self.detail.model is not None and self.detail.model.id == model.id:
            self.detail.show_model(
                model, self.results.installed.get(model.id, set()), self.nsfw_box.isChecked()
            )

    @Slot()
    def show_results(self) -> None:
        if self._detail_load is not None:
            self._detail_load.cancel()
            self._detail_load = None
        self._hide_detail_banner()  # else it would stay, and hold back scrolling for more
        self.stack.setCurrentIndex(0)

    # -- the folder a download goes to --------------------------------------------------------

    @Slot(object)
    def _show_target(self, version: ModelVersion | None) -> None:
        """Say under Download where the file goes: the chosen folder, else the one the
        queue will pick (the core's placement, which reads the library: in a worker)."""
        model = self.detail.model
        if self.chosen_folder is not None:
            self.detail.set_target(display_folder(self.chosen_folder), chosen=True)
            return
        shown = (model.id if model else None, version.id if version else None)
        if self._target_of != shown:
            # Another version: its folder is being worked out (the same one keeps its words
            # while the library is read again, after a download for instance).
            self._target_of = shown
            self.shown_folder = None
            self.detail.set_target(None)
        if model is None or version is None or version.primary_file is None:
            return
        kind = folder_type(model.type, version.primary_file.type)

        def found(folder: Path) -> None:
            if self.detail.current_version() is version and self.chosen_folder is None:
                self.shown_folder = folder
                self.detail.set_target(display_folder(folder))

        run_task(self.core.folder_for_type, kind, on_result=found, pool="db",
                 name="download folder", owner=self)

    @Slot()
    def change_target(self) -> None:
        """Ask for a folder; take it when it lies inside the library folders."""
        start = (self.chosen_folder or self.shown_folder
                 or self.core.settings.effective_download_root)
        picked = self.ask_folder(str(start))
        if not picked:
            return

        def refused(exc: BaseException) -> None:
            box = QMessageBox(QMessageBox.Icon.Warning, "Choose another folder", str(exc),
                              QMessageBox.StandardButton.Ok, self)
            box.setObjectName("targetRefused")
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()

        run_task(chosen_download_folder, self.core.settings, picked, on_result=self._target_chosen,
                 on_error=refused, pool="db", name="check download folder", owner=self)

    def _target_chosen(self, folder: Path) -> None:
        self.chosen_folder = folder
        self.detail.set_target(display_folder(folder), chosen=True)

    @Slot(int, object, bool)
    def _download_from_detail(self, version_id: int, file_id: int | None,
                              allow_flagged: bool) -> None:
        folder = str(self.chosen_folder) if self.chosen_folder is not None else None
        self.download_requested.emit(version_id, file_id, allow_flagged, folder)

    # -- image parameters ---------------------------------------------------------------------

    def _lookup_params(self, version_id: int, viewer: ImageViewer) -> None:
        """The image's parameters from the version's /model-versions form (asked once)."""
        known = self._params_versions.get(version_id)
        if known is not None:
            viewer.show_params(params_of(known, viewer.image))
            return
        nsfw = self.nsfw_box.isChecked()

        def arrived(version: ModelVersion) -> None:
            self._params_versions[version_id] = version
            viewer.show_params(params_of(version, viewer.image))

        run_task(lambda: self.clients.get(mature=nsfw).get_version(version_id),
                 on_result=arrived,
                 on_error=lambda exc: viewer.params_failed(
                     f"Its parameters could not be loaded: {error_text(exc)}"),
                 pool="network", name="image parameters", owner=viewer)

    # -- the cards' menu ----------------------------------------------------------------------

    @Slot(QModelIndex, QPoint)
    def show_card_menu(self, index: QModelIndex, where: QPoint) -> None:
        """Download latest, Open on Civitai, Copy link, for the card at ``index``."""
        model = index.data(ResultRole.MODEL)
        if not isinstance(model, Model):
            return
        menu = self.card_menu(model)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(where)

    def card_menu(self, model: Model) -> QMenu:
        menu = QMenu(self)
        menu.setObjectName("cardMenu")
        latest = model.latest_version
        download = menu.addAction("Download latest")
        download.setObjectName("menuDownloadLatest")
        download.setEnabled(latest is not None and latest.primary_file is not None)
        download.triggered.connect(lambda: self._download_latest(model))
        url = self.core.sites.page_of(model)
        open_page = menu.addAction("Open on Civitai")
        open_page.setObjectName("menuOpenOnCivitai")
        open_page.triggered.connect(lambda: self.opener.open(QUrl(url), "the model's page"))
        copy = menu.addAction("Copy link")
        copy.setObjectName("menuCopyLink")
        copy.triggered.connect(lambda: QGuiApplication.clipboard().setText(url))
        return menu

    def _download_latest(self, model: Model) -> None:
        latest = model.latest_version
        file = latest.primary_file if latest is not None else None
        if latest is None or file is None:
            return
        if file.danger is not None and not confirm_flagged(self, file.danger):
            return
        self.download_requested.emit(latest.id, None, file.danger is not None, None)
