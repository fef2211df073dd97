"""Paths past Windows' MAX_PATH: the extended-length form, and the download code using it.

The form itself is checked with Windows' path rules (``ntpath``); the download code runs
here against :class:`~tests.core.windows_sim.SimulatedLongPaths`, which fails a long path
given to the OS without :func:`~civdesk.core.longpaths.os_path` as Windows does.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from civdesk.core import longpaths, placement
from civdesk.core.downloads import downloader, filenames, locks
from civdesk.core.longpaths import LONG_FROM, extended_length, normal_path, os_path
from tests.core.test_downloader import downloader_for, one_file_version
from tests.core.windows_sim import SimulatedLongPaths
from tests.double import CivitaiDouble

DEEP = "C:\\Users\\someone\\" + "\\".join(["a folder name of forty characters long.."] * 6)


def test_short_paths_stay_as_they_are() -> None:
    assert extended_length("C:\\models\\Lora\\x.safetensors") == "C:\\models\\Lora\\x.safetensors"
    assert os_path(Path("/x") / ("y" * 400), windows=False) == "/x/" + "y" * 400


def test_a_long_path_gets_the_extended_form_normalised() -> None:
    long = DEEP + "\\model.safetensors"
    assert len(long) >= LONG_FROM
    assert extended_length(long) == "\\\\?\\" + long
    # The extended form takes every character literally: "/" and ".." are resolved first.
    slashed = DEEP.replace("\\", "/") + "/sub/../model.safetensors"
    assert extended_length(slashed) == "\\\\?\\" + long
    assert os_path(long, windows=True) == "\\\\?\\" + long


def test_a_long_path_on_a_share_gets_the_unc_form() -> None:
    share = "\\\\nas\\models" + DEEP[2:] + "\\model.safetensors"
    assert extended_length(share) == "\\\\?\\UNC\\nas\\models" + DEEP[2:] + "\\model.safetensors"


@pytest.mark.parametrize("path", [
    "\\\\?\\" + DEEP,  # already extended
    "\\\\.\\" + DEEP,  # a device path
    DEEP[3:],  # relative: Windows resolves it against the current folder itself
    "C:" + DEEP[3:],  # relative to the current folder of drive C:
])
def test_other_forms_are_left_alone(path: str) -> None:
    assert extended_length(path) == path


def test_the_normal_form_comes_back_from_the_extended_one() -> None:
    long = DEEP + "\\model.safetensors"
    share = "\\\\nas\\models" + DEEP[2:]
    for path in (long, share, "C:\\short.safetensors"):
        assert normal_path(os_path(path, windows=True), windows=True) == path
    assert normal_path("\\\\.\\PhysicalDrive0", windows=True) == "\\\\.\\PhysicalDrive0"
    assert normal_path("\\\\?\\" + long, windows=False) == "\\\\?\\" + long  # elsewhere


@pytest.fixture
def windows_paths(monkeypatch: pytest.MonkeyPatch) -> SimulatedLongPaths:
    sim = SimulatedLongPaths(LONG_FROM)
    sim.patch(monkeypatch, downloader, locks, filenames, placement)
    monkeypatch.setattr(longpaths, "os_path", sim.os_path)
    return sim


def deep_folder(root: Path) -> Path:
    folder = root / ("d" * 120) / ("e" * 120)
    os.makedirs(folder)  # this test's os: no rule
    return folder


def test_downloads_into_a_folder_past_max_path(civitai: CivitaiDouble, tmp_path: Path,
                                               windows_paths: SimulatedLongPaths) -> None:
    version = one_file_version(civitai, size=1 << 20)
    f = version.files[0]
    folder = deep_folder(tmp_path)
    usage = windows_paths.guarded(shutil.disk_usage)
    result = downloader_for(civitai, disk_usage=usage).download(
        version.id, f.id, folder, expected_sha256=f.sha256)
    assert len(str(result.path)) >= LONG_FROM
    windows_paths.active = False
    assert result.path.read_bytes() == f.read_bytes()
    assert [p.name for p in folder.iterdir()] == [f.name]  # no .part left


def test_a_long_path_that_exists_is_never_written_over(
        civitai: CivitaiDouble, tmp_path: Path, windows_paths: SimulatedLongPaths) -> None:
    version = one_file_version(civitai, size=1 << 20)
    f = version.files[0]
    folder = deep_folder(tmp_path)
    windows_paths.active = False
    (folder / f.name).write_bytes(b"another file's bytes")
    windows_paths.active = True
    usage = windows_paths.guarded(shutil.disk_usage)
    result = downloader_for(civitai, disk_usage=usage).download(
        version.id, f.id, folder, expected_sha256=f.sha256, file_name=f.name)
    windows_paths.active = False
    assert (folder / f.name).read_bytes() == b"another file's bytes"
    assert result.path.name != f.name and result.path.read_bytes() == f.read_bytes()


def test_a_learned_folder_past_max_path_is_found(tmp_path: Path,
                                                 windows_paths: SimulatedLongPaths) -> None:
    folder = deep_folder(tmp_path)
    files = [(str(folder / f"{n}.safetensors"), str(tmp_path)) for n in range(3)]
    assert placement.most_common_folder(files) == folder
