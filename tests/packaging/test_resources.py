"""The bundled artwork: every file the app asks for exists, is well formed, and is found
from a source checkout, from a frozen bundle and not at all (a clear error)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from civdesk import resources
from civdesk.resources import ResourcesMissing, resource_path, resources_root

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _fresh_lookup(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(resources.ENV_RESOURCES, raising=False)
    resources_root.cache_clear()
    yield
    resources_root.cache_clear()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_source_checkout_finds_the_top_level_folder():
    assert resources_root() == REPO / "resources"
    assert resource_path("icons", "civdesk.ico") == REPO / "resources" / "icons" / "civdesk.ico"


@pytest.mark.parametrize("size", [16, 24, 32, 48, 64, 128, 256, 512, 1024])
def test_app_icon_png_has_its_size(size: int):
    data = resource_path("icons", f"civdesk-{size}.png").read_bytes()
    assert png_size(data) == (size, size)


@pytest.mark.parametrize("name", ["tray", "tray-dark"])
@pytest.mark.parametrize("size", [16, 22, 32, 64])
def test_tray_icon_png_has_its_size(name: str, size: int):
    assert png_size(resource_path("icons", f"{name}-{size}.png").read_bytes()) == (size, size)


def test_ico_directory_points_at_png_entries_16_to_256():
    data = resource_path("icons", "civdesk.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1)
    sizes = []
    for index in range(count):
        w, h, _colors, _res, planes, bits, length, offset = struct.unpack(
            "<BBBBHHII", data[6 + 16 * index : 22 + 16 * index]
        )
        entry = data[offset : offset + length]
        assert (planes, bits) == (1, 32)
        # ICO stores 256 as 0; the PNG inside must agree with the directory.
        assert png_size(entry) == (w or 256, h or 256)
        sizes.append(w or 256)
    assert sizes == [16, 24, 32, 48, 64, 128, 256]


def test_icns_entries_carry_the_pixel_size_their_type_requires():
    data = resource_path("icons", "civdesk.icns").read_bytes()
    assert data[:4] == b"icns"
    assert struct.unpack(">I", data[4:8])[0] == len(data)
    required = {b"ic07": 128, b"ic08": 256, b"ic09": 512, b"ic10": 1024,
                b"ic11": 32, b"ic12": 64, b"ic13": 256, b"ic14": 512}
    found = {}
    offset = 8
    while offset < len(data):
        kind = data[offset : offset + 4]
        length = struct.unpack(">I", data[offset + 4 : offset + 8])[0]
        found[kind] = png_size(data[offset + 8 : offset + length])[0]
        offset += length
    assert offset == len(data)
    assert found == required


def test_frozen_bundle_is_searched_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bundled = tmp_path / "resources"
    shutil.copytree(REPO / "resources", bundled)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources_root() == bundled


def test_a_folder_without_the_files_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "resources").mkdir()  # e.g. a bundle built without the datas entry
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources_root() == REPO / "resources"


def test_missing_everywhere_is_one_actionable_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(resources, "candidate_roots", lambda: [tmp_path / "nowhere"])
    with pytest.raises(ResourcesMissing) as caught:
        resources_root()
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path / "nowhere") in message
    assert resources.ENV_RESOURCES in message


def test_environment_override_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    shutil.copytree(REPO / "resources", tmp_path / "share")
    monkeypatch.setenv(resources.ENV_RESOURCES, str(tmp_path / "share"))
    assert resources_root() == tmp_path / "share"


def test_resource_path_refuses_to_leave_the_folder():
    with pytest.raises(ValueError):
        resource_path("..", "pyproject.toml")


def test_the_drawing_script_recreates_every_committed_file(tmp_path: Path):
    """Committed binaries and the script that draws them must not drift apart in name."""
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_icons.py"), "--out", str(tmp_path)],
        check=True, capture_output=True, timeout=60,
    )
    drawn = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    committed = {
        p.relative_to(REPO / "resources")
        for p in (REPO / "resources").rglob("*")
        if p.is_file() and p.suffix in {".png", ".ico", ".icns"}
    }
    assert drawn == committed
