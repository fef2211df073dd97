"""Work that overlaps: a scan during downloads, two scans at once, folders added twice or
nested. One SQLite file, real threads, real files."""

from __future__ import annotations

import threading
from pathlib import Path

from civdesk.core.downloads.queue import DownloadQueue
from civdesk.core.library.repository import Library
from civdesk.core.scanner import Scanner, ScanSummary
from civdesk.core.settings import Settings
from tests.double import CivitaiDouble, make_safetensors
from tests.hardening.helpers import MiB, integrity, quick_client, quick_downloader, sha256_of


def fill(folder: Path, n: int, tag: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{tag}-{i}.safetensors"
        path.write_bytes(make_safetensors(f"{tag}{i}".encode() * 500))
        paths.append(path)
    return paths


def in_threads(*targets: object) -> list[object]:
    """Run the callables at once; their results (or exceptions) in order."""
    results: list[object] = [None] * len(targets)
    barrier = threading.Barrier(len(targets))

    def run(i: int, target: object) -> None:
        barrier.wait()
        try:
            results[i] = target()  # type: ignore[operator]
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results


def test_scan_while_downloads_run(civitai: CivitaiDouble, library: Library,
                                  tmp_path: Path) -> None:
    model = civitai.add_model("Busy", "Checkpoint")
    versions = [civitai.add_version(model, name=f"v{i}", files=[civitai.file(size=4 * MiB)])
                for i in range(3)]
    civitai.throttle_downloads(16 * MiB)
    folder = tmp_path / "models"
    local = fill(folder, 150, "local")
    dest = folder / "downloads"  # downloads land inside the folder being scanned
    client = quick_client(civitai)
    queue = DownloadQueue(library.db, client, downloader=quick_downloader(client))
    ids = [queue.add(v.id, dest_dir=dest) for v in versions]
    settings = Settings(library_folders=[str(folder)])
    scanner = Scanner(library, quick_client(civitai), settings)
    ran, summary = in_threads(queue.run_until_empty, scanner.scan)
    assert ran == 3 and isinstance(summary, ScanSummary), summary
    for task_id, version in zip(ids, versions, strict=True):
        task = queue.task(task_id)
        assert task.state == "completed", task.error
        assert sha256_of(Path(task.dest_path or "")) == version.files[0].sha256
    # A scan never registers a .part; the next scan sees everything, once.
    assert not [f for f in library.local_files() if f.path.endswith(".part")]
    Scanner(library, quick_client(civitai), settings).scan()
    paths = [f.path for f in library.local_files()]
    assert len(paths) == len(set(paths)) == len(local) + 3
    assert integrity(tmp_path / "library.sqlite3") == "ok"


def test_two_scans_at_once_in_the_core(library: Library, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    paths = fill(folder, 200, "same")
    settings = Settings(library_folders=[str(folder)])
    first, second = in_threads(Scanner(library, None, settings).scan,
                               Scanner(library, None, settings).scan)
    for outcome in (first, second):
        # Either both finish or the second refuses clearly; never a crash or a half library.
        assert isinstance(outcome, ScanSummary) or "scan" in str(outcome).lower(), outcome
    rows = library.local_files()
    assert sorted(f.path for f in rows) == sorted(str(p) for p in paths)
    assert all(f.sha256 == sha256_of(Path(f.path)) for f in rows)
    assert library.duplicates() == []


def test_a_folder_added_twice_or_nested_is_scanned_once(library: Library,
                                                        tmp_path: Path) -> None:
    outer = tmp_path / "models"
    inner = outer / "Lora"
    fill(outer, 3, "outer")
    fill(inner, 4, "inner")
    settings = Settings()
    assert settings.add_library_folder(inner)
    assert settings.add_library_folder(outer)  # the parent replaces the nested folder
    assert not settings.add_library_folder(outer)
    assert not settings.add_library_folder(str(outer) + "/")
    assert not settings.add_library_folder(inner)
    assert settings.library_folders == [str(outer)]
    # Even when a caller passes overlapping folders, each file is stored once.
    Scanner(library, None, settings).scan([outer, inner, outer / "." / "Lora"])
    assert len(library.local_files()) == 7
    assert library.duplicates() == []
    summary = Scanner(library, None, settings).scan()
    assert summary.removed == 0 and len(library.local_files()) == 7


def test_overlapping_folders_are_counted_once(library: Library, tmp_path: Path) -> None:
    outer = tmp_path / "models"
    inner = outer / "Lora"
    fill(outer, 3, "outer")
    fill(inner, 4, "inner")
    summary = Scanner(library, None, Settings()).scan([outer, inner])
    assert (summary.found, summary.duplicates) == (7, 0)
