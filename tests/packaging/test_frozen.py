"""The frozen app, built from build.spec exactly as `make app` does, and then run for real.

One PyInstaller build serves the whole run (``tests/packaging/frozen.py``; a minute or more
on a small machine). Set ``CIVDESK_FROZEN_APP`` to an existing one-folder build
(``dist/civdesk``) to test that instead, e.g. a release artifact.

The runs prove what a user of the download would hit first: the version answers, a scan
against the Civitai double identifies real files, the window opens offscreen and closes
with exit code 0, nothing is written beside the executable, and the bundle leaves out the
Qt modules civdesk does not use. Sizes and start-up times are printed for the record.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from civdesk import __version__
from tests.double import CivitaiDouble, SampleCatalog, build_sample_catalog, make_safetensors
from tests.packaging.frozen import REPO, FrozenApp, locate, run, run_env

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(1200)]

ENTRY_SCRIPT = REPO / "packaging" / "civdesk_entry.py"
@pytest.fixture(scope="module")
def catalog() -> Iterator[SampleCatalog]:
    # The conftest fixtures are function-scoped; the module shares one double.
    double = CivitaiDouble(api_key="test-key")
    double.start()
    try:
        yield build_sample_catalog(double)
    finally:
        double.stop()


@pytest.fixture(autouse=True)
def _nothing_written_beside_the_executable(frozen_app: FrozenApp) -> Iterator[None]:
    before = frozen_app.manifest()
    yield
    after = frozen_app.manifest()
    changed = sorted(set(after) ^ set(before) | {k for k in after if after[k] != before.get(k)})
    assert changed == [], f"the app wrote into its own folder: {changed[:20]}"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A private home: the runs must never read or write the real user's folders."""
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


# --------------------------------------------------------------------------------- tests


def test_version(frozen_app: FrozenApp, home: Path):
    result = run([frozen_app.cli, "--version"], run_env(home), cwd=home).check()
    assert result.stdout.strip() == f"civdesk {__version__}"


def test_scan_identifies_files_against_the_double(
    frozen_app: FrozenApp, catalog: SampleCatalog, home: Path, tmp_path: Path
):
    models = tmp_path / "models"
    models.mkdir()
    known = {catalog.lora_v1: catalog.lora_v1.files[0],
             catalog.checkpoint_v1: catalog.checkpoint_v1.files[0]}
    for model_file in known.values():
        (models / str(model_file.name)).write_bytes(model_file.read_bytes())
    (models / "my-own-merge.safetensors").write_bytes(make_safetensors(b"not on civitai" * 64))
    data_dir = tmp_path / "data"

    result = run(
        [frozen_app.cli, "--data-dir", data_dir, "--api-base", catalog.double.base_url,
         "scan", models, "--json"],
        run_env(home), cwd=home,
    ).check()

    record = json.loads(result.stdout)
    assert (record["found"], record["identified"], record["unknown"]) == (3, 2, 1)
    by_hash = {m["sha256"].upper(): m for m in record["models"]}
    for version, model_file in known.items():
        assert by_hash[model_file.sha256.upper()]["version_id"] == version.id
    # The database went where it was told, not beside the executable or into the home.
    assert (data_dir / "library.sqlite3").is_file()
    assert not list(home.rglob("*.sqlite3"))


@pytest.mark.skipif(sys.platform == "win32", reason="Windows folders ignore HOME/XDG")
def test_without_data_dir_the_database_goes_to_the_users_data_folder(
    frozen_app: FrozenApp, home: Path, tmp_path: Path
):
    # `list` opens (so creates) the library without going online.
    run([frozen_app.cli, "list", "--json"], run_env(home), cwd=tmp_path).check()
    databases = [p.relative_to(home) for p in home.rglob("library.sqlite3")]
    expected = (Path("Library/Application Support/civdesk/library.sqlite3")
                if sys.platform == "darwin" else Path("xdg-data/civdesk/library.sqlite3"))
    assert databases == [expected]
    assert not list(tmp_path.glob("*.sqlite3"))  # not in the working directory either


def test_window_opens_offscreen_and_closes_cleanly(
    frozen_app: FrozenApp, home: Path, tmp_path: Path
):
    env = run_env(home, CIVDESK_STARTUP_PROBE="1", CIVDESK_QUIT_AFTER_MS="1500")
    result = run([frozen_app.gui, "--data-dir", tmp_path / "data"], env, cwd=home).check()
    assert result.first_window_seconds() > 0
    assert (tmp_path / "data" / "library.sqlite3").is_file()


def test_startup_time_frozen_and_from_source(
    frozen_app: FrozenApp, home: Path, tmp_path: Path, report
):
    # Quit a moment after the first paint, as a person would: the figure is the time to
    # that paint, and the start-up work (library load) gets to finish first.
    env = run_env(home, CIVDESK_STARTUP_PROBE="1", CIVDESK_QUIT_AFTER_MS="1500")
    data = tmp_path / "data"
    # A first run creates the database and warms the disk cache; time the next ones.
    run([frozen_app.gui, "--data-dir", data], env, cwd=home).check()
    frozen = min(
        run([frozen_app.gui, "--data-dir", data], env, cwd=home).check().first_window_seconds()
        for _ in range(3)
    )
    source_env = dict(env, PYTHONPATH=str(REPO / "src"))
    source = min(
        run([sys.executable, ENTRY_SCRIPT, "--data-dir", data], source_env, cwd=home)
        .check().first_window_seconds()
        for _ in range(3)
    )
    report(f"start-up to first window (best of 3): frozen {frozen:.2f} s, "
           f"from source {source:.2f} s")
    # Generous: catches a bundle that unpacks or scans something at every start.
    assert frozen < 10.0


def test_bundle_holds_resources_and_leaves_out_unused_qt(frozen_app: FrozenApp, report):
    # Linux builds link _internal/libQt6*.so to PySide6/Qt/lib/: count each file once.
    files = [p for p in frozen_app.folder.rglob("*") if p.is_file() and not p.is_symlink()]
    size = sum(p.stat().st_size for p in files)
    built = (f", built in {frozen_app.build_seconds:.0f} s"
             if frozen_app.build_seconds is not None else "")
    report(f"bundle: {size / 2**20:.0f} MiB in {len(files)} files{built}")

    names = {p.name for p in files}
    assert "civdesk-256.png" in names and "civdesk.qss" in names
    unwanted = ("Qt6Qml", "Qt6Quick", "Qt6WebEngine", "Qt6Pdf", "Qt6Multimedia", "Qt63D",
                "Qt6Designer", "QtQml", "QtQuick", "QtWebEngine", "QtDesigner", "QtTest",
                "_tkinter", "qtbase_de.qm")
    bundled = sorted(n for n in names if any(u in n for u in unwanted))
    assert bundled == []
    # A size guard: today ~190 MiB on Linux; 300 means something big slipped in.
    assert size < 300 * 2**20


def test_bundle_folder_is_self_contained(frozen_app: FrozenApp, tmp_path: Path, home: Path):
    """The folder works wherever it is copied: no absolute path into the build machine."""
    moved = tmp_path / "elsewhere" / "civdesk"
    shutil.copytree(frozen_app.folder, moved, symlinks=True)
    copy = locate(moved, None)
    result = run([copy.cli, "--version"], run_env(home), cwd=home).check()
    assert result.stdout.strip() == f"civdesk {__version__}"
