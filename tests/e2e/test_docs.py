"""Help and docs match behaviour: every command and action is in the documented contract."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from civdesk.cli.app import build_parser

REPO = Path(__file__).resolve().parents[2]


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def cli_contract() -> str:
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    start = text.index("### The command line")
    return text[start:text.index("\n### ", start + 1)]


def test_every_command_and_action_is_in_the_cli_contract() -> None:
    contract = cli_contract()
    missing = []
    for name, command in _subcommands(build_parser()).items():
        if not re.search(rf"^- `{re.escape(name)}\b", contract, re.MULTILINE):
            missing.append(name)
        for action in _subcommands(command):
            if not re.search(rf"\b{re.escape(action)}\b", contract):
                missing.append(f"{name} {action}")
    assert missing == []
