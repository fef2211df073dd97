"""Two processes, one download: ``civdesk download`` runs while another queue and another
``civdesk download`` look at the same task; a SIGKILL frees it for a resume with Range."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from civdesk.core.downloads.downloader import Downloader
from civdesk.core.downloads.queue import DownloadingElsewhere, DownloadQueue
from civdesk.core.library.db import Database
from tests.double import CivitaiDouble
from tests.hardening.helpers import Cli, MiB, assert_one_line_error, quick_client, sha256_of

SIZE = 12 * MiB


def wait_for_part(part: Path, process: subprocess.Popen[str], at_least: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if part.exists() and part.stat().st_size >= at_least:
            return
        time.sleep(0.01)
    raise AssertionError(f"{part} did not grow to {at_least} bytes")


def test_a_running_cli_download_is_owned_and_a_killed_one_resumes(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    version = civitai.add_version(civitai.add_model("Owned", "Checkpoint"),
                                  files=[civitai.file(size=SIZE)])
    f = version.files[0]
    civitai.throttle_downloads(2 * MiB)
    cli = Cli(tmp_path / "data", civitai.base_url)
    dest = tmp_path / "downloads"
    part = dest / ((f.name or "") + ".part")
    first = cli.start("download", str(version.id), "--dest", str(dest))
    try:
        wait_for_part(part, first, MiB)

        # A second queue on the same data folder (the window, say) leaves the task alone.
        with Database.open(cli.database) as db:
            client = quick_client(civitai)
            queue = DownloadQueue(db, client, downloader=Downloader(client, retry_delay=0))
            [task] = queue.tasks()
            assert task.state == "downloading" and task.elsewhere
            assert (task.owner_pid, task.owner is not None) == (first.pid, True)
            assert queue.run_next() is None
            try:
                queue.cancel(task.id)
                raise AssertionError("cancelled another process's download")
            except DownloadingElsewhere as exc:
                assert f"(pid {first.pid})" in str(exc)

        # A second `civdesk download` of the same file says who has it, and stops.
        second = cli.run("download", str(version.id), "--dest", str(dest), timeout=30)
        assert_one_line_error(second, [f"already being downloaded by another civdesk "
                                       f"(pid {first.pid})"])
        assert first.poll() is None  # undisturbed
        size_at_kill = part.stat().st_size
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    kept = part.stat().st_size
    assert 0 < kept < SIZE and kept >= size_at_kill

    # The killed process's lock died with it: a new queue takes the task back and resumes.
    civitai.throttle_downloads(None)
    civitai.clear_requests()
    with Database.open(cli.database) as db:
        client = quick_client(civitai)
        queue = DownloadQueue(db, client, downloader=Downloader(client, retry_delay=0))
        [task] = queue.tasks()
        assert (task.state, task.elsewhere, task.owner_pid) == ("queued", False, None)
        done = queue.run_next()
        assert done is not None and done.state == "completed", done and done.error
    ranges = [r.headers.get("Range") for r in civitai.requests
              if r.host == "storage" and r.path.startswith("/files/")]
    assert ranges == [f"bytes={kept}-"]
    assert sha256_of(dest / (f.name or "")) == f.sha256
    assert not part.exists()
    assert not list((cli.data_dir / "locks").glob("*.lock"))


def test_two_data_folders_downloading_into_one_folder_never_share_a_part(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    """A portable copy beside an installed one (two data folders, so two lock folders and
    two queues) download the same version into one folder at once."""
    version = civitai.add_version(civitai.add_model("Shared", "Checkpoint"),
                                  files=[civitai.file(size=SIZE)])
    f = version.files[0]
    civitai.throttle_downloads(2 * MiB)
    installed = Cli(tmp_path / "installed-data", civitai.base_url)
    portable = Cli(tmp_path / "portable-data", civitai.base_url)
    dest = tmp_path / "nas" / "models"
    part = dest / ((f.name or "") + ".part")
    first = installed.start("download", str(version.id), "--dest", str(dest))
    try:
        wait_for_part(part, first, MiB)
        second = portable.start("download", str(version.id), "--dest", str(dest))
        _, err = second.communicate(timeout=60)
        result = subprocess.CompletedProcess(second.args, second.returncode, "", err)
        assert_one_line_error(result, [f"another program is downloading {f.name} into {dest}"])
        assert first.poll() is None  # undisturbed
        civitai.throttle_downloads(None)
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, err
    assert "SHA256 verified" in out
    assert sha256_of(dest / (f.name or "")) == f.sha256  # the bytes in the file, not a mix
    assert not part.exists()
    # The loser's queue goes on: its task failed with the reason, and running the command
    # again finds the verified file without downloading it.
    civitai.clear_requests()
    again = portable.run("download", str(version.id), "--dest", str(dest), timeout=60)
    assert again.returncode == 0, again.stderr
    assert not [r for r in civitai.requests if r.host == "storage" and "/files/" in r.path]
