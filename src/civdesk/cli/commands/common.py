"""Small helpers shared by the command modules."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

from civdesk.cli.errors import UsageError
from civdesk.core.civitai.refs import BadReference, ModelRef, parse_ref
from civdesk.core.civitai.schema import MODEL_TYPES

Subparsers = argparse._SubParsersAction

#: The largest integer SQLite stores (a signed 64-bit one): every id the library keeps.
MAX_ID = (1 << 63) - 1


def json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON on stdout (and no progress)")


def without_key_flag(parser: argparse.ArgumentParser) -> None:
    """``--without-key``: the commands that download, past the up-front key check."""
    parser.add_argument("--without-key", action="store_true",
                        help="try without an API key (Civitai requires one for every "
                        "download; some files may still come without)")


def record_id(text: str) -> int:
    """An id argument (a task, a file): a positive whole number SQLite can store.

    Only ASCII digits: ``int()`` would also take ``1_000`` or other scripts' digits.
    """
    value = text.strip()
    if not re.fullmatch(r"[0-9]+", value, re.ASCII):
        raise argparse.ArgumentTypeError(f"not an id (a whole number): {text!r}")
    number = int(value)
    if not 0 < number <= MAX_ID:
        shown = value if len(value) <= 24 else value[:21] + "…"
        raise argparse.ArgumentTypeError(f"no such id: {shown} (ids run from 1 to {MAX_ID})")
    return number


def model_type(text: str) -> str:
    """``lora`` → ``LORA``: Civitai's spelling of a model type, matched without case."""
    for known in MODEL_TYPES:
        if known.lower() == text.strip().lower():
            return known
    raise argparse.ArgumentTypeError(
        f"unknown model type {text!r} (one of: {', '.join(MODEL_TYPES)})")


def existing_folder(text: str) -> Path:
    """An absolute, resolved folder that exists (a clear usage error otherwise)."""
    if not text.strip():  # an unset variable: never the current folder by accident
        raise UsageError("An empty folder name was given (an unset variable?)")
    path = Path(text).expanduser().resolve()
    if not path.exists():
        raise UsageError(f"No such folder: {path}")
    if not path.is_dir():
        raise UsageError(f"Not a folder: {path}")
    return path


def parse_reference(text: str, api_base: str | Sequence[str] | None = None) -> ModelRef:
    """A REF argument; a malformed one is a usage error (exit 2), with the accepted forms."""
    try:
        return parse_ref(text, api_base)
    except BadReference as exc:
        raise UsageError(str(exc)) from None
