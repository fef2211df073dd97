"""The GUI thread never writes the database nor reads the keychain: not while the window
starts, not while a download is queued and runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from tests.double import SampleCatalog
from tests.ui.conftest import wait_until_ready

from civdesk.core.context import Core
from civdesk.core.downloads.store import TaskStore
from civdesk.core.secrets import ApiKeyStore
from civdesk.ui.main_window import MainWindow

WAIT_MS = 15_000
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN IMMEDIATE")


class ThreadLog:
    """Which thread did each database write and each keychain read."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []  # (what, thread name)
        self._lock = threading.Lock()

    def note(self, what: str) -> None:
        with self._lock:
            self.events.append((what, threading.current_thread().name))

    def on_gui_thread(self) -> list[str]:
        gui = threading.main_thread().name
        with self._lock:
            return [what for what, thread in self.events if thread == gui]

    def count(self, prefix: str) -> int:
        with self._lock:
            return sum(1 for what, _ in self.events if what.startswith(prefix))


@contextmanager
def recording(core: Core, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadLog]:
    """From here on: note the thread of each write statement and each key read."""
    log = ThreadLog()

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(WRITES):
            log.note("write: " + statement.split("\n", 1)[0][:80])

    event.listen(core.db.engine, "before_cursor_execute", before)
    real_get = ApiKeyStore.get

    def get(self: ApiKeyStore) -> str | None:
        log.note("keychain read")
        return real_get(self)

    monkeypatch.setattr(ApiKeyStore, "get", get)
    try:
        yield log
    finally:
        event.remove(core.db.engine, "before_cursor_execute", before)


def test_starting_the_window_and_downloading_do_no_io_on_the_gui_thread(
    qtbot, core: Core, civitai_catalog: SampleCatalog, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A task left "downloading" by a process that died: recovering it writes the database.
    store = TaskStore(core.db)
    stale = store.add(civitai_catalog.vae_v1.id, dest_dir=str(tmp_path / "dl"))
    store.update(stale.id, state="downloading")

    with recording(core, monkeypatch) as io_log:
        window = MainWindow(core, use_tray=False)
        qtbot.addWidget(window)
        wait_until_ready(qtbot, window)
        with qtbot.waitSignal(window.downloads.task_finished, timeout=WAIT_MS):
            window.key_gate.add(civitai_catalog.lora_v1.id, dest_dir=str(tmp_path / "dl"))
        # The log saw both kinds (it would pass vacuously otherwise).
        assert io_log.count("write") and io_log.count("keychain")
        on_gui_thread = io_log.on_gui_thread()
        window.close()
    assert on_gui_thread == [], "\n".join(on_gui_thread)
