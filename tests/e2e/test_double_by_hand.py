"""``python -m tests.double`` (``make double``): what the README tells a new user to try
against the double, done the way the double prints it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import signals_as_in_a_terminal
from tests.e2e.test_cli import civdesk

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def double_by_hand(tmp_path: Path) -> Iterator[tuple[dict[str, Any], subprocess.Popen[str]]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.double", "--demo", str(tmp_path / "demo"), "--json"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        preexec_fn=signals_as_in_a_terminal)
    assert process.stdout is not None
    first = process.stdout.readline()
    try:
        yield json.loads(first), process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_the_printed_commands_work_against_the_double(
    double_by_hand: tuple[dict[str, Any], subprocess.Popen[str]], tmp_path: Path
) -> None:
    ready, process = double_by_hand
    env = {"CIVITAI_API_BASE": ready["base_url"], "CIVITAI_API_KEY": ready["api_key"],
           "CIVDESK_DATA_DIR": ready["data_dir"]}
    library = tmp_path / "demo" / "library"
    assert ready["data_dir"] == str(tmp_path / "demo" / "data")
    assert sorted(Path(p).relative_to(library).parts[0] for p in ready["library"]) == [
        "Lora", "embeddings"]

    scan = civdesk("scan", str(library), "--json", env=env)
    assert scan.code == 0, scan.stderr
    assert (scan.json["found"], scan.json["identified"]) == (2, 2)

    updates = civdesk("updates", "--json", env=env)
    assert updates.code == 0, updates.stderr
    assert [(u["latest_version_id"], u["installed_version_ids"]) for u in updates.json] == [
        (ready["versions"]["lora_v2"], [ready["versions"]["lora_v1"]])]

    download = civdesk("download", str(ready["versions"]["lora_v2"]), "--json", env=env)
    assert download.code == 0, download.stderr
    assert download.json["state"] == "completed"
    assert Path(download.json["path"]).parent == library / "Lora"

    # The checkpoint is protected, as the printed text says: without the key, a clear line.
    refused = civdesk("download", str(ready["versions"]["checkpoint"]),
                      env={**env, "CIVITAI_API_KEY": ""})
    assert refused.code != 0 and len(refused.error_lines) == 1
    assert "API key" in refused.error_lines[0]

    process.send_signal(signal.SIGINT)  # Ctrl+C
    assert process.wait(timeout=10) == 0
    assert process.stdout is not None  # read as a file: its first line is in its buffer
    printed = process.stdout.read()
    assert "Ctrl+C stops the double" in printed
    # The walkthrough shows the update before it downloads it.
    assert printed.index("civdesk updates") < printed.index("civdesk download")


def test_each_run_of_the_walkthrough_starts_in_new_folders() -> None:
    folders: list[Path] = []
    for _ in range(2):
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.double", "--json"], cwd=REPO, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
            preexec_fn=signals_as_in_a_terminal)
        try:
            assert process.stdout is not None
            folders.append(Path(json.loads(process.stdout.readline())["data_dir"]).parent)
        finally:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=10)
    try:
        assert folders[0] != folders[1]
        assert all((f / "library" / "Lora").is_dir() for f in folders)
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
