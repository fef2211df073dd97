"""``civdesk download`` asks Civitai while the library opens, and keeps that answer only
when the opened library would have asked the same."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from civdesk.cli.app import main
from civdesk.core.context import Core
from civdesk.core.settings_peek import stored_settings
from tests.conftest import TEST_API_KEY
from tests.double import SampleCatalog

SRC = Path(__file__).resolve().parents[2] / "src"


def version_requests(catalog: SampleCatalog, version_id: int) -> int:
    return sum(r.path.endswith(f"/model-versions/{version_id}")
               for r in catalog.double.requests)


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVITAI_API_KEY", TEST_API_KEY)


def download(catalog: SampleCatalog, data: Path, dest: Path) -> int:
    return main(["--data-dir", str(data), "--api-base", catalog.double.base_url, "download",
                 str(catalog.lora_v2.id), "--dest", str(dest), "--json"])


def test_the_first_request_goes_out_while_the_library_opens(
        civitai_catalog: SampleCatalog, tmp_path: Path, key: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    c = civitai_catalog
    opened = Core.open
    asked_first: list[bool] = []

    def open_once_asked(*args: Any, **kwargs: Any) -> Core:
        # The library opens only once Civitai has the request (or after 10 s without it).
        deadline = time.monotonic() + 10
        while not version_requests(c, c.lora_v2.id) and time.monotonic() < deadline:
            time.sleep(0.01)
        asked_first.append(version_requests(c, c.lora_v2.id) == 1)
        return opened(*args, **kwargs)

    monkeypatch.setattr(Core, "open", staticmethod(open_once_asked))
    assert download(c, tmp_path / "data", tmp_path / "dest") == 0
    assert asked_first == [True]
    assert version_requests(c, c.lora_v2.id) == 1  # the answer was used, not asked again
    assert (tmp_path / "dest" / c.lora_v2.primary_file.name).is_file()  # type: ignore[union-attr]


def test_an_answer_the_library_would_not_have_asked_for_is_dropped(
        civitai_catalog: SampleCatalog, tmp_path: Path, key: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    c = civitai_catalog
    # The settings read early say mature content is allowed; the library, once open, not
    # (another civdesk changed it in between): the version is asked again, as the library says.
    monkeypatch.setattr("civdesk.core.settings_peek.stored_settings",
                        lambda path: {"allow_nsfw": True})
    assert download(c, tmp_path / "data", tmp_path / "dest") == 0
    assert version_requests(c, c.lora_v2.id) == 2  # early (dropped), then again


def test_no_key_no_early_request(civitai_catalog: SampleCatalog, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CIVITAI_API_KEY", "")
    c = civitai_catalog
    assert download(c, tmp_path / "data", tmp_path / "dest") == 1
    assert "requires an API key" in capsys.readouterr().err
    assert c.double.requests == []


def test_stored_settings_are_read_without_the_library(tmp_path: Path) -> None:
    assert stored_settings(tmp_path / "none.sqlite3") == {}
    core = Core.open(tmp_path / "data")
    try:
        core.settings.allow_nsfw = True
        core.settings.library_folders = ["/models"]
        core.save_settings()
        stored = stored_settings(core.paths.database)
    finally:
        core.close()
    assert stored is not None
    assert stored["allow_nsfw"] is True and stored["library_folders"] == ["/models"]


def test_a_file_that_is_no_library_gives_no_settings(tmp_path: Path) -> None:
    (tmp_path / "junk.sqlite3").write_bytes(b"not a database" * 100)
    assert stored_settings(tmp_path / "junk.sqlite3") is None
    sqlite3.connect(tmp_path / "other.sqlite3").execute("CREATE TABLE t (x)").connection.close()
    assert stored_settings(tmp_path / "other.sqlite3") is None


def test_a_library_being_written_still_gives_its_settings(tmp_path: Path) -> None:
    core = Core.open(tmp_path / "data")
    try:
        core.settings.allow_nsfw = True
        core.save_settings()
        held = threading.Event()
        done = threading.Event()

        def write() -> None:
            with core.db.session():  # BEGIN IMMEDIATE: a writer holds the file
                held.set()
                done.wait(10)

        writer = threading.Thread(target=write)
        writer.start()
        held.wait(10)
        try:
            assert (stored_settings(core.paths.database) or {}).get("allow_nsfw") is True
        finally:
            done.set()
            writer.join()
    finally:
        core.close()


def test_a_command_leaves_finalisation_nothing_to_collect(tmp_path: Path) -> None:
    """The objects a command made are frozen out of the collector's reach as it returns:
    the process ends without walking them all (a sixth of a GiB download's time here)."""
    code = ("import gc, sys, civdesk.__main__ as m\n"
            "before = gc.get_freeze_count()\n"
            "m.main(['--data-dir', sys.argv[1], 'list', '--json'])\n"
            "print(before, gc.get_freeze_count() > 1000)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["0", "True"]
