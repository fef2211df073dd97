"""The API key never leaves the process except in the Authorization header to the API host.

It must not reach logs, exception messages, the database file (and its WAL), companion
files, the CLI's log file, stdout/stderr, or the storage host a download redirects to.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from civdesk.core.civitai.errors import CivitaiError
from civdesk.core.context import Core
from civdesk.core.downloads.queue import DownloadQueue
from civdesk.core.scanner import Scanner
from tests.double import CivitaiDouble
from tests.hardening.helpers import Cli, assert_one_line_error, cli_env, quick_client

SECRET = "civdeskSECRETkey0123456789abcdef"


@pytest.fixture
def double() -> Iterator[CivitaiDouble]:
    with CivitaiDouble(api_key=SECRET) as d:
        yield d


def every_file(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.exists():
            yield from (p for p in root.rglob("*") if p.is_file())


def assert_nowhere_on_disk(*roots: Path) -> list[Path]:
    checked = list(every_file(*roots))
    for path in checked:
        data = path.read_bytes()
        assert SECRET.encode() not in data, path
        assert SECRET.encode("utf-16-le") not in data, path
    return checked


def assert_only_api_host_got_the_key(d: CivitaiDouble) -> None:
    api_with_key = 0
    for request in d.requests:
        values = " ".join(f"{k}: {v}" for k, v in request.headers.items())
        in_query = any(SECRET in v for vs in request.query_all.values() for v in vs)
        if request.host == "storage":
            assert "authorization" not in {k.lower() for k in request.headers}, request
            assert SECRET not in values and not in_query, request
            assert "token" not in {k.lower() for k in request.query_all}, request
        elif SECRET in values:
            api_with_key += 1
        assert not in_query, f"key in a URL: {request.path}"
    assert api_with_key, "the key was never sent at all: the test would prove nothing"


def catalog(d: CivitaiDouble) -> tuple[object, object]:
    model = d.add_model("Secret Lora", "LORA")
    version = d.add_version(model, name="v1")
    locked = d.add_version(model, name="v2")
    d.login_required(locked)
    return version, locked


def test_cli_runs_leave_no_key_anywhere(double: CivitaiDouble, tmp_path: Path) -> None:
    version, locked = catalog(double)
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "copy.safetensors").write_bytes(version.files[0].read_bytes())  # type: ignore[attr-defined]
    cli = Cli(tmp_path / "data", double.base_url, api_key=SECRET)
    outputs = [
        cli.run("download", str(version.id), "--dest", str(tmp_path / "dl")),  # type: ignore[attr-defined]
        cli.run("scan", str(folder)),
        cli.run("list", "--json"),
        cli.run("updates", "--force"),
    ]
    assert all(r.returncode == 0 for r in outputs), [r.stderr for r in outputs]
    # A wrong key and a refused download: error paths print and log the most.
    wrong = Cli(tmp_path / "data", double.base_url, api_key=SECRET[::-1])
    outputs.append(wrong.run("download", str(locked.id)))  # type: ignore[attr-defined]
    double.fail(n=50, status=500)
    outputs.append(cli.run("--retries", "0", "download", str(locked.id)))  # type: ignore[attr-defined]
    assert outputs[-1].returncode == 1 and outputs[-2].returncode == 1
    for result in outputs:
        assert SECRET not in result.stdout + result.stderr
        assert SECRET[::-1] not in result.stdout + result.stderr
    checked = assert_nowhere_on_disk(tmp_path)
    names = {p.name for p in checked}
    assert "library.sqlite3" in names and "civdesk-cli.log" in names
    assert any(n.endswith(".civitai.info") for n in names)
    assert_only_api_host_got_the_key(double)


def test_core_queue_and_scanner_keep_the_key_out_of_logs_db_and_errors(
    double: CivitaiDouble, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3 and requests too
    version, locked = catalog(double)
    core = Core.open(tmp_path / "data", api_base=double.base_url, api_key=SECRET)
    try:
        assert SECRET not in repr(core) and SECRET not in repr(core.client())
        client = quick_client(double, api_key=SECRET)
        queue = DownloadQueue(core.db, client)
        ok = queue.add(version.id, dest_dir=tmp_path / "dl")  # type: ignore[attr-defined]
        double.rate_limit(n=2, retry_after=0.01)
        double.truncate_downloads(after_bytes=1000)
        queue.run_until_empty()
        assert queue.task(ok).state == "completed"
        double.login_required(version)  # type: ignore[arg-type]
        client.api_key = SECRET[:-1]  # a wrong key: the 401 message must not quote it
        refused = queue.add(locked.id, dest_dir=tmp_path / "dl")  # type: ignore[attr-defined]
        queue.run_until_empty()
        assert queue.task(refused).state == "failed"
        errors: list[str] = []
        for call in (lambda: client.open_download(locked.id),  # type: ignore[attr-defined]
                     lambda: client.get_version(99_999_999)):
            with pytest.raises(CivitaiError) as caught:
                call()
            errors += [str(caught.value), repr(caught.value), str(caught.value.url)]
        client.api_key = SECRET
        Scanner(core.library, client, core.settings).scan([tmp_path / "dl"])
        task_errors = [t.error or "" for t in queue.tasks()]
        # While the database is open its recent writes live in the -wal file: grep that too.
        wal = core.paths.database.with_name(core.paths.database.name + "-wal")
        assert wal.exists() and wal.stat().st_size > 0
        assert wal in assert_nowhere_on_disk(tmp_path)
    finally:
        core.close()
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for text in [logged, *errors, *task_errors]:
        assert SECRET not in text and SECRET[:-1] not in text
    assert_nowhere_on_disk(tmp_path)
    assert_only_api_host_got_the_key(double)


def test_a_key_pasted_with_its_line_end_works_and_stays_hidden(
    double: CivitaiDouble, tmp_path: Path
) -> None:
    # `--api-key $'KEY\n'`: the line end of a paste or of `$(cat keyfile)` is not the key's.
    version = double.add_version(double.add_model("Pasted", "LORA"))
    double.login_required(version)
    cli = Cli(tmp_path / "data", double.base_url, api_key=SECRET + "\n")
    result = cli.run("download", str(version.id), "--dest", str(tmp_path / "dl"))
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert_nowhere_on_disk(cli.data_dir)
    assert_only_api_host_got_the_key(double)


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_key_with_a_line_break_inside_is_refused_in_words_without_it(
    double: CivitaiDouble, tmp_path: Path, how: str
) -> None:
    broken = SECRET[:10] + "\r\n" + SECRET[10:]
    cli = Cli(tmp_path / "data", double.base_url, api_key=broken if how == "option" else None)
    env = cli_env(**({"CIVITAI_API_KEY": broken} if how == "environment" else {}))
    result = subprocess.run(cli.argv("download", "1"), env=env, cwd=tmp_path, text=True,
                            capture_output=True, timeout=60, check=False)
    assert_one_line_error(result, ["line break", "paste"])
    for part in (SECRET[:10], SECRET[10:]):
        assert part not in result.stdout + result.stderr
    assert_nowhere_on_disk(cli.data_dir)
    assert not [r for r in double.requests if r.host != "storage" and "download" in r.path]


def test_the_log_filter_hides_a_key_whoever_logs_it(tmp_path: Path) -> None:
    from civdesk.core.secret_text import REDACTED, RedactingFilter, remember_secret

    remember_secret(SECRET)
    log_file = tmp_path / "log.txt"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("some.library")
    logger.addHandler(handler)
    try:
        logger.warning("header %s rejected", f"Bearer {SECRET}")
        try:
            raise ValueError(f"Invalid header value 'Bearer {SECRET}\\n'")
        except ValueError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = log_file.read_text(encoding="utf-8")
    assert SECRET not in text
    assert text.count(REDACTED) == 2  # the message and the exception in the traceback
