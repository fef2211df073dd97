"""The commands, one module per group; each module's ``register`` adds its subparsers.

A handler is ``handler(session, args) -> exit code``; it imports the core parts it uses
inside itself, so ``civdesk --help`` stays fast and loads no database or network code.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from types import ModuleType

from civdesk.cli.commands import config, db, downloads, library, manifest, online, queue

GROUPS: tuple[ModuleType, ...] = (library, manifest, downloads, queue, online, config, db)


def register(subparsers: argparse._SubParsersAction,
             parents: Sequence[argparse.ArgumentParser]) -> None:
    for group in GROUPS:
        group.register(subparsers, list(parents))
