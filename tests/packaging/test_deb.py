"""The Debian package, built from the frozen app as `make package` does, then installed.

What a Linux user does: `apt-get install ./civdesk_<version>_amd64.deb`, then start civdesk
from the application menu (its desktop entry's ``Exec`` line). Installing needs root and
apt (CI runs as root on Debian); elsewhere those tests skip and say why. The validators
come from Debian's desktop-file-utils and appstream packages (.ci/run installs them).
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from civdesk import __version__
from tests.double import CivitaiDouble, build_sample_catalog
from tests.packaging.frozen import REPO, FrozenApp, run, run_env

pytestmark = [
    pytest.mark.packaging, pytest.mark.timeout(1200),
    pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("dpkg-deb"),
                       reason="Debian packages are built on Linux with dpkg-deb"),
]

sys.path.insert(0, str(REPO / "scripts"))
import build_deb  # noqa: E402

APP_ID = build_deb.APP_ID
CAN_INSTALL = os.geteuid() == 0 and shutil.which("apt-get") is not None
INSTALL_REASON = "installing a .deb needs root and apt-get"


@pytest.fixture(scope="module")
def deb(frozen_app: FrozenApp, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_deb.build(frozen_app.folder, tmp_path_factory.mktemp("deb"))


def dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], check=True, capture_output=True,
                          text=True).stdout


def test_the_package_holds_the_app_its_entry_icons_and_metadata(deb: Path) -> None:
    assert deb.name == f"civdesk_{__version__}_{build_deb.architecture()}.deb"
    fields = dpkg_deb("--field", str(deb), "Package", "Version", "Depends")
    assert f"Version: {__version__}" in fields
    for library in ("libxcb-cursor0", "libxkbcommon-x11-0", "libegl1"):
        assert library in fields
    listing = dpkg_deb("--contents", str(deb))
    for path in ("./opt/civdesk/civdesk", "./usr/share/applications/civdesk.desktop",
                 "./usr/share/icons/hicolor/256x256/apps/civdesk.png",
                 f"./usr/share/metainfo/{APP_ID}.metainfo.xml"):
        assert f" {path}" in listing, path
    assert "./usr/bin/civdesk -> /opt/civdesk/civdesk" in listing
    assert " root/root " in listing and "/home/" not in listing


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate (Debian: desktop-file-utils) is missing")
def test_the_desktop_entry_is_valid() -> None:
    result = subprocess.run(
        ["desktop-file-validate", str(REPO / "packaging" / "linux" / "civdesk.desktop")],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout


@pytest.mark.skipif(shutil.which("appstreamcli") is None,
                    reason="appstreamcli (Debian: appstream) is missing")
def test_the_appstream_metadata_is_valid(tmp_path: Path) -> None:
    metainfo = tmp_path / f"{APP_ID}.metainfo.xml"
    metainfo.write_text(build_deb.metainfo(), encoding="utf-8")
    result = subprocess.run(["appstreamcli", "validate", "--no-net", str(metainfo)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def installed(deb: Path) -> Iterator[Path]:
    """The package installed with apt (dependencies and all), removed afterwards."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(["apt-get", "install", "-y", "-q", str(deb)], env=env,
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    try:
        yield Path("/usr/share/applications/civdesk.desktop")
    finally:
        subprocess.run(["apt-get", "remove", "-y", "-q", "civdesk"], env=env,
                       capture_output=True, timeout=300, check=False)


def exec_line(desktop_file: Path) -> list[str]:
    entry = configparser.ConfigParser(interpolation=None)
    entry.read(desktop_file, encoding="utf-8")
    # Field codes (%U, %f…) are the launcher's to fill; civdesk takes none.
    return [a for a in shlex.split(entry["Desktop Entry"]["Exec"]) if not a.startswith("%")]


@pytest.mark.skipif(not CAN_INSTALL, reason=INSTALL_REASON)
def test_installed_it_starts_from_its_menu_entry_and_scans(
    installed: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    command = exec_line(installed)
    assert shutil.which(command[0]) == "/usr/bin/civdesk"
    version = run([*command, "--version"], run_env(home), cwd=home).check()
    assert version.stdout.strip() == f"civdesk {__version__}"

    with CivitaiDouble(api_key="test-key") as double:
        catalog = build_sample_catalog(double)
        models = tmp_path / "models"
        models.mkdir()
        lora = catalog.lora_v1.files[0]
        (models / "paper.safetensors").write_bytes(lora.read_bytes())
        env = run_env(home, CIVITAI_API_BASE=double.base_url, CIVITAI_API_KEY="test-key")
        scan = run([*command, "scan", str(models), "--json"], env, cwd=home).check()
    record = json.loads(scan.stdout)
    assert (record["found"], record["identified"]) == (1, 1)

    window = run(command, run_env(home, CIVDESK_QUIT_AFTER_MS="1500"), cwd=home).check()
    assert window.returncode == 0
    data = home / "xdg-data" / "civdesk" / "library.sqlite3"
    assert data.is_file()

    subprocess.run(["apt-get", "remove", "-y", "-q", "civdesk"], check=True,
                   capture_output=True, timeout=300,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    assert not Path("/opt/civdesk").exists() and shutil.which("civdesk") is None
    # The user's library, settings and model files are theirs, not the package's.
    assert data.is_file() and (models / "paper.safetensors").is_file()
