"""The command line's pure parts, in process: formatting, progress text, error lines, parsing."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from civdesk.cli.app import build_parser, main
from civdesk.cli.errors import (
    EXIT_FAILURE,
    EXIT_USAGE,
    UsageError,
    describe,
    report_expected,
    report_unexpected,
)
from civdesk.cli.output import print_json, shell_quote, table
from civdesk.cli.progress import ProgressBar, SpeedMeter, format_count, format_progress
from civdesk.core.civitai.errors import AuthRequired, EarlyAccess, NetworkError, RateLimited
from civdesk.core.errors import DiskFull
from civdesk.core.units import clock_duration as human_duration
from civdesk.core.units import human_size
from tests.conftest import TEST_API_KEY


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (999, "999 B"), (1536, "1.5 KB"), (6_775_430_351, "6.8 GB"), (None, "?")],
)
def test_human_size(size: int | None, text: str) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (75, "1:15"), (3725, "1:02:05"), (None, "--:--"), (-1, "--:--"),
     (float("nan"), "--:--")],
)
def test_human_duration(seconds: float | None, text: str) -> None:
    assert human_duration(seconds) == text


def test_table_aligns_columns_and_shows_missing_cells() -> None:
    lines = table([(1, "Paperfold Style", None), (12345, "X", "/a b/c")], ("ID", "NAME", "PATH"))
    assert lines == [
        "ID     NAME             PATH",
        "1      Paperfold Style  -",
        "12345  X                /a b/c",
    ]


def test_print_json_writes_paths_as_strings(tmp_path: object) -> None:
    from pathlib import Path

    out = io.StringIO()
    print_json({"path": Path("/x/y.safetensors"), "ids": {3, 1}}, out)
    assert out.getvalue() == '{\n  "path": "/x/y.safetensors",\n  "ids": [\n    1,\n    3\n  ]\n}\n'


def test_progress_text_has_percent_bytes_speed_and_time_left() -> None:
    text = format_progress(50_000_000, 200_000_000, 10_000_000, "model.safetensors", 120)
    assert text.startswith(" 25% [######------------------] 50.0 MB / 200 MB  10.0 MB/s")
    assert "ETA 0:15" in text and text.endswith("model.safetensors")
    narrow = format_progress(50_000_000, 200_000_000, None, "a-very-long-name" * 5, 80)
    assert len(narrow) <= 80 and "ETA --:--" in narrow and narrow.endswith("…")
    assert format_count(3, 4, "models", 80).endswith("3/4 models")


def test_speed_is_averaged_over_recent_samples() -> None:
    clock = FakeClock()
    meter = SpeedMeter(window=5, clock=clock)
    meter.add(0)
    assert meter.bytes_per_second is None
    for _ in range(10):
        clock.now += 1
        meter.add(int((clock.now - 100) * 1000))
    assert meter.bytes_per_second == pytest.approx(1000)
    meter.add(0)  # a restart from zero forgets the history
    assert meter.bytes_per_second is None


def test_progress_bar_draws_only_when_enabled_and_throttles() -> None:
    clock = FakeClock()
    out = Tty()
    bar = ProgressBar(enabled=True, stream=out, clock=clock)
    bar.update(10, 100)
    bar.update(20, 100)  # same instant: skipped
    clock.now += 1
    bar.update(30, 100)
    assert out.getvalue().count("\r\033[K") == 2 and "30 B / 100 B" in out.getvalue()
    bar.finish()
    assert out.getvalue().endswith("\r\033[K")

    silent = io.StringIO()
    off = ProgressBar(enabled=False, stream=silent, clock=clock)
    off.update(1, 2)
    off.note("retrying")
    off.finish()
    assert silent.getvalue() == ""


def test_an_auth_error_tells_how_to_give_a_key_on_the_command_line() -> None:
    line = describe(AuthRequired("Civitai refused the download: this file requires an API key"))
    assert "--api-key" in line and "civdesk config set-key" in line
    disabled = describe(AuthRequired("Civitai refused the download: the creator has disabled "
                                     "downloads on this file"))
    assert "--api-key" not in disabled


def test_expected_errors_are_one_line_with_exit_codes() -> None:
    out = io.StringIO()
    assert report_expected(EarlyAccess("in early access until 2026-12-31\nsecond line",
                                       deadline="2026-12-31"), out) == EXIT_FAILURE
    assert out.getvalue() == "civdesk: error: in early access until 2026-12-31 second line\n"
    out = io.StringIO()
    assert report_expected(UsageError("No library folders yet"), out) == EXIT_USAGE
    out = io.StringIO()
    report_expected(RateLimited("Civitai is rate limiting requests", retry_after=30), out)
    assert "wait 30 s" in out.getvalue()
    out = io.StringIO()
    report_expected(DiskFull("Not enough free space in /x: 2.0 GB needed, 1.0 GB free"), out)
    assert out.getvalue().count("\n") == 1
    out = io.StringIO()
    report_expected(NetworkError("Cannot reach Civitai at h: refused"), out)
    assert out.getvalue() == "civdesk: error: Cannot reach Civitai at h: refused\n"


def test_an_unexpected_error_points_at_the_log(tmp_path: object) -> None:
    from pathlib import Path

    out = io.StringIO()
    log_file = Path(str(tmp_path)) / "civdesk-cli.log"
    assert report_unexpected(KeyError("boom"), log_file, out) == EXIT_FAILURE
    assert out.getvalue() == (f"civdesk: error: unexpected failure (KeyError: 'boom'); "
                              f"the details are in {log_file}\n")


def test_global_options_work_before_and_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--api-key", "A", "--retries", "0", "list"])
    after = parser.parse_args(["list", "--api-key", "B", "--json"])
    both = parser.parse_args(["--data-dir", "/d", "list", "--api-key", "C"])
    assert (before.api_key, before.retries, before.json) == ("A", 0, False)
    assert (after.api_key, after.json, after.data_dir) == ("B", True, None)
    assert (both.api_key, both.data_dir) == ("C", "/d")
    assert parser.parse_args(["list", "--type", "lora"]).type == "LORA"


def test_no_command_opens_the_window_with_the_global_options(tmp_data_dir: object) -> None:
    seen = []
    code = main(["--data-dir", "/tmp/x", "--api-key", "K"],
                open_window=lambda session: seen.append(session.options) or 7)
    assert code == 7
    assert (seen[0].data_dir, seen[0].api_key) == ("/tmp/x", "K")


def test_usage_errors_exit_2(tmp_data_dir: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--type", "nonsense"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "unknown model type 'nonsense'" in err
    assert main(["--retries", "-1", "list"]) == EXIT_USAGE


@pytest.mark.parametrize("argv", [
    ["queue", "cancel", "{id}"],
    ["download", "12", "--file-id", "{id}"],
])
@pytest.mark.parametrize("text", ["999999999999999999999", "9223372036854775808", "0", "-3",
                                  "1_000", "\u0661\u0662", "12abc"])
def test_every_id_argument_is_checked_in_one_line(
        tmp_data_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
        text: str) -> None:
    """An id SQLite cannot store was an "unexpected failure"; any id is checked up front."""
    assert main([arg.replace("{id}", text) for arg in argv]) == EXIT_USAGE
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "unexpected" not in errors[0]
    assert "no such id" in errors[0] or "not an id" in errors[0]
    assert not any(tmp_data_dir.iterdir())  # refused before the library was opened


def test_the_largest_id_sqlite_stores_is_accepted() -> None:
    parsed = build_parser().parse_args(["queue", "cancel", str(2**63 - 1)])
    assert parsed.task_id == 2**63 - 1


def test_background_work_returns_its_result_or_raises_its_error() -> None:
    from civdesk.cli.background import run_cancellable

    assert run_cancellable(lambda: 42, lambda: None) == 42

    def fail() -> None:
        raise DiskFull("no room")

    with pytest.raises(DiskFull, match="no room"):
        run_cancellable(fail, lambda: None)


def test_ctrl_c_asks_background_work_to_stop_and_waits_for_it(
        ctrl_c_as_in_a_terminal: None) -> None:
    import _thread
    import threading

    from civdesk.cli.background import run_cancellable

    stop = threading.Event()
    finished = threading.Event()

    def work() -> str:
        _thread.interrupt_main()  # what Ctrl+C does: KeyboardInterrupt in the main thread
        stop.wait(10)
        finished.set()
        return "stopped"

    with pytest.raises(KeyboardInterrupt):
        run_cancellable(work, stop.set)
    assert stop.is_set() and finished.is_set()


@pytest.mark.parametrize(("system", "text", "quoted"), [
    ("posix", "/models/Lora/my styles", "'/models/Lora/my styles'"),
    ("posix", "/models/it's", "'/models/it'\"'\"'s'"),
    ("posix", "/plain/path", "/plain/path"),
    ("nt", r"C:\Models\my styles", r'"C:\Models\my styles"'),
    ("nt", r"C:\plain", r"C:\plain"),
])
def test_shell_quote_pastes_into_the_users_shell(
    monkeypatch: pytest.MonkeyPatch, system: str, text: str, quoted: str
) -> None:
    monkeypatch.setattr("civdesk.cli.output.os.name", system)
    assert shell_quote(text) == quoted


def test_a_search_limit_out_of_range_names_the_range(
        tmp_data_dir: object, capsys: pytest.CaptureFixture[str]) -> None:
    for limit in ("0", "101"):
        assert main(["search", "x", "--limit", limit]) == EXIT_USAGE
        err = capsys.readouterr().err
        assert f"argument --limit: must be between 1 and 100 (not {limit})" in err
        assert "invalid choice" not in err
    assert build_parser().parse_args(["search", "x", "--limit", "100"]).limit == 100


@pytest.mark.parametrize("base", ["notaurl", "ftp://x", "http://host:port"])
def test_an_api_base_that_is_no_web_address_is_a_usage_error(
        tmp_data_dir: object, capsys: pytest.CaptureFixture[str], base: str) -> None:
    assert main(["--api-base", base, "search", "x"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"error: argument --api-base: {base!r} is not the address of a Civitai site" in err
    assert "e.g. https://civitai.com" in err and "unexpected" not in err


def test_civitai_api_base_is_held_to_the_rules_of_the_option(
        tmp_data_dir: object, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVITAI_API_BASE", "notaurl")
    assert main(["search", "x"]) == EXIT_USAGE
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["civdesk: error: CIVITAI_API_BASE: 'notaurl' is not the address of a "
                     "Civitai site; give its root, e.g. https://civitai.com"]


def test_an_api_base_given_as_the_api_address_means_its_site(
        tmp_data_dir: object, civitai_catalog: object, civitai: Any,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    api = f"{civitai.base_url}/api/v1/"
    assert main(["--api-base", api, "search", "Paperfold", "--json"]) == 0
    assert capsys.readouterr().out.startswith("[")
    monkeypatch.setenv("CIVITAI_API_BASE", api)
    assert main(["search", "Paperfold", "--json"]) == 0
    assert all(r["url"].startswith(f"{civitai.base_url}/models/")
               for r in json.loads(capsys.readouterr().out))


def test_a_librarys_own_error_goes_to_the_log_not_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # SQLAlchemy logs "Exception closing connection" with its traceback when a second
    # Ctrl+C lands while the library closes: one line on the terminal, not a traceback.
    import logging

    def interrupted_while_closing(session: object, args: object) -> int:
        logging.getLogger("sqlalchemy.pool.impl.QueuePool").error(
            "Exception closing connection", exc_info=KeyboardInterrupt())
        raise KeyboardInterrupt

    monkeypatch.setattr("civdesk.cli.commands.library.run_list", interrupted_while_closing)
    assert main(["--data-dir", str(tmp_path), "list"]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception closing connection" not in err
    log = (tmp_path / "logs").glob("*.log")
    assert any("Exception closing connection" in p.read_text() for p in log)


def test_ctrl_c_as_a_download_completes_reports_it_completed(
    tmp_data_dir: object, civitai: Any, civitai_catalog: Any,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from civdesk.cli.commands import downloads

    def finished_then_ctrl_c(work: Any, stop: Any, **kw: Any) -> Any:
        work()  # the file is verified and in place…
        raise KeyboardInterrupt  # …when Ctrl+C lands

    monkeypatch.setattr(downloads, "run_cancellable", finished_then_ctrl_c)
    version = civitai_catalog.lora_v1
    code = main(["--api-base", civitai.base_url, "--api-key", TEST_API_KEY, "download",
                 str(version.id), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    record = json.loads(out.out)
    assert record["state"] == "completed" and Path(record["path"]).is_file()
