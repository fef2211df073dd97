"""Disk problems: a size limit on writes, read-only folders, files that change or vanish while
hashed, and a library drive unplugged between scans.

Tests run as root here, and root ignores file permissions: read-only folders are real
read-only mounts (tmpfs) when mounting is allowed, chmod when not root, else skipped.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civdesk.core.downloads.downloader import PART_SUFFIX
from civdesk.core.hashing import sha256_file
from civdesk.core.library.repository import Library
from civdesk.core.scanner import Scanner
from civdesk.core.settings import Settings
from tests.double import CivitaiDouble, FakeVersion, make_safetensors
from tests.hardening.helpers import Cli, MiB, assert_one_line_error, integrity, quick_client

FILE_SIZE = 6 * MiB + 17


def big_version(d: CivitaiDouble) -> FakeVersion:
    model = d.add_model("Disk Test", "Checkpoint")
    return d.add_version(model, files=[d.file(size=FILE_SIZE)])


# -- a write limit (the file system is "full" for this process) ------------------------------


def limit_file_size(limit: int) -> Any:
    def apply() -> None:
        # EFBIG from write() instead of death by SIGXFSZ: what a full disk looks like to us.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_write_limit_fails_clearly_then_resumes(civitai: CivitaiDouble, tmp_path: Path) -> None:
    version = big_version(civitai)
    cli = Cli(tmp_path / "data", civitai.base_url)
    assert cli.run("list").returncode == 0  # the database exists before the limit applies
    dest = tmp_path / "dl"
    process = cli.start("download", str(version.id), "--dest", str(dest),
                        preexec_fn=limit_file_size(4 * MiB))
    out, err = process.communicate(timeout=60)
    result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    assert_one_line_error(result)
    f = version.files[0]
    part = dest / ((f.name or "") + PART_SUFFIX)
    assert not (dest / (f.name or "")).exists()
    assert 0 < part.stat().st_size <= 4 * MiB  # the bytes written are kept
    kept = part.stat().st_size
    assert integrity(cli.database) == "ok"
    civitai.clear_requests()
    done = cli.run("download", str(version.id), "--dest", str(dest))
    assert done.returncode == 0, done.stderr
    assert sha256_file(dest / (f.name or "")) == f.sha256
    ranges = [r.headers.get("Range") for r in civitai.requests
              if r.host == "storage" and r.path.startswith("/files/")]
    assert ranges == [f"bytes={kept}-"]


# -- read-only folders -----------------------------------------------------------------------


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` (already filled) read-only for real, also for root."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    # Root: a read-only bind mount over the folder.
    bind = subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)],
                          capture_output=True, check=False)
    if bind.returncode != 0:
        pytest.skip("running as root and mounting is not permitted: cannot make a folder "
                    f"read-only for root ({bind.stderr.decode().strip()})")
    try:
        probe = folder / ".write-probe"
        with contextlib.suppress(OSError):
            probe.write_bytes(b"")
            subprocess.run(["umount", str(folder)], check=False)
            pytest.skip("this kernel ignores ro on bind mounts")
        yield
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, check=False)


def test_scan_of_a_read_only_folder_registers_files_and_reports(
    civitai: CivitaiDouble, library: Library, tmp_path: Path
) -> None:
    model = civitai.add_model("RO", "LORA")
    version = civitai.add_version(model)
    folder = tmp_path / "ro-models"
    folder.mkdir()
    (folder / "known.safetensors").write_bytes(version.files[0].read_bytes())
    (folder / "unknown.safetensors").write_bytes(make_safetensors(b"x" * 999))
    settings = Settings(library_folders=[str(folder)])
    with read_only(folder):
        summary = Scanner(library, quick_client(civitai), settings).scan()
        assert sorted(os.listdir(folder)) == ["known.safetensors", "unknown.safetensors"]
    assert summary.found == 2 and summary.identified == 1
    entries = {Path(e.path).name: e for e in library.entries()}
    assert entries["known.safetensors"].version_id == version.id
    # The companions could not be written: a clear note, no crash.
    assert summary.errors and all("\n" not in e for e in summary.errors)


def test_download_into_a_read_only_folder_fails_clearly(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    version = big_version(civitai)
    dest = tmp_path / "ro-dl"
    dest.mkdir()
    cli = Cli(tmp_path / "data", civitai.base_url)
    with read_only(dest):
        result = cli.run("download", str(version.id), "--dest", str(dest))
    assert_one_line_error(result)
    assert not list(dest.iterdir())


def test_download_folder_that_is_a_file_fails_clearly(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    version = big_version(civitai)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("I am a file")
    result = Cli(tmp_path / "data", civitai.base_url).run(
        "download", str(version.id), "--dest", str(blocker / "sub"))
    assert_one_line_error(result)
    assert blocker.read_text() == "I am a file"


# -- files that change or vanish while hashed ------------------------------------------------


def test_a_file_that_changes_or_vanishes_while_hashed(library: Library, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    changing = folder / "changing.safetensors"
    vanishing = folder / "vanishing.safetensors"
    steady = folder / "steady.safetensors"
    for path in (changing, vanishing, steady):
        path.write_bytes(make_safetensors(os.urandom(3 * MiB)))

    def meddling_hasher(path: Path, **kw: Any) -> str:
        progress = kw.get("progress")
        meddled = False

        def on_progress(*args: Any) -> None:
            nonlocal meddled
            if not meddled and Path(path) == changing:
                with changing.open("r+b") as fh:  # rewritten in place mid-hash
                    fh.seek(100)
                    fh.write(b"CHANGED")
                meddled = True
            elif not meddled and Path(path) == vanishing:
                vanishing.unlink()
                meddled = True
            if progress:
                progress(*args)

        kw["progress"] = on_progress
        return sha256_file(path, **kw)

    settings = Settings(library_folders=[str(folder)])
    summary = Scanner(library, None, settings, hasher=meddling_hasher).scan()
    rows = {Path(f.path).name: f for f in library.local_files()}
    assert rows["steady.safetensors"].sha256 == sha256_file(steady)
    # Never a stored hash that does not match the bytes: either the true hash now, or no
    # row / no hash so the next scan reads the file again.
    row = rows.get("changing.safetensors")
    if row is not None and row.sha256:
        assert row.sha256 == sha256_file(changing), "a stale hash was stored"
    assert "vanishing.safetensors" not in rows or not rows["vanishing.safetensors"].sha256
    assert all("\n" not in e for e in summary.errors)
    Scanner(library, None, settings).scan()
    rows = {Path(f.path).name: f for f in library.local_files()}
    assert rows["changing.safetensors"].sha256 == sha256_file(changing)
    assert "vanishing.safetensors" not in rows


# -- a drive unplugged between scans ---------------------------------------------------------


def test_unplugged_library_drive_removes_nothing(
    civitai: CivitaiDouble, library: Library, tmp_path: Path
) -> None:
    model = civitai.add_model("Drive", "LORA")
    versions = [civitai.add_version(model, name=f"v{i}") for i in range(3)]
    drive = tmp_path / "drive"
    folder = drive / "models"
    folder.mkdir(parents=True)
    for i, v in enumerate(versions):
        (folder / f"m{i}.safetensors").write_bytes(v.files[0].read_bytes())
    other = tmp_path / "local"
    other.mkdir()
    (other / "keep.safetensors").write_bytes(make_safetensors(b"local"))
    settings = Settings(library_folders=[str(folder), str(other)])
    Scanner(library, quick_client(civitai), settings).scan()
    before = {e.path: e.version_id for e in library.entries()}
    assert len(before) == 4

    unplugged = tmp_path / "elsewhere"
    drive.rename(unplugged)  # the mount point is gone
    summary = Scanner(library, quick_client(civitai), settings).scan()
    assert summary.removed == 0 and str(folder) in summary.missing_roots
    assert {e.path: e.version_id for e in library.entries()} == before
    assert {e.path: e.offline for e in library.entries()} == {
        p: p.startswith(str(folder)) for p in before}

    # An empty mount point (the drive's folder exists, its files do not) is kept too.
    folder.mkdir(parents=True)
    summary = Scanner(library, quick_client(civitai), settings).scan()
    assert summary.removed == 0
    assert {e.path: e.version_id for e in library.entries()} == before

    shutil.rmtree(drive)
    unplugged.rename(drive)  # plugged back in: everything is still there, nothing rehashed
    summary = Scanner(library, quick_client(civitai), settings).scan()
    assert summary.removed == 0 and summary.hashed == 0
    assert {e.path: e.version_id for e in library.entries()} == before
    assert not any(e.offline for e in library.entries())
