"""The API key as text: cleaning what a user pasted, and keeping it out of every message.

A key pasted with its line end (``--api-key $'KEY\\n'``, a ``CIVITAI_API_KEY`` written by an
editor with CRLF) must still work, and a key with a control character inside can never be
sent in a header: :func:`clean_api_key` strips the first and refuses the second in words that
do not repeat the key. Every key that passes through it is remembered, so :func:`redact` can
take it out of any text and :class:`RedactingFilter` out of every log record, whatever
library wrote the message (defence in depth: the code never logs a key on purpose).
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from civdesk.core.errors import CivdeskError

#: What a remembered key is replaced with in text.
REDACTED: Final = "[API key hidden]"
#: Shorter strings are not remembered: replacing them could garble ordinary words.
MIN_SECRET_LENGTH: Final = 8

_secrets: set[str] = set()
_lock = threading.Lock()


class InvalidApiKey(CivdeskError):
    """The key holds characters no Civitai key has (a line break inside, a tab…)."""


def remember_secret(value: str | None) -> None:
    """From now on, :func:`redact` hides ``value`` (and its trimmed form) in any text."""
    if not value:
        return
    with _lock:
        for variant in (value, value.strip()):
            if len(variant) >= MIN_SECRET_LENGTH:
                _secrets.add(variant)


def redact(text: str) -> str:
    """``text`` with every remembered key replaced by :data:`REDACTED`."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)  # the longer variant first
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def clean_api_key(raw: str | None, where: str = "The API key") -> str | None:
    """The key without surrounding white space; None when nothing is left.

    Raises :class:`InvalidApiKey` when a control character or a space is left inside: such a
    key cannot be sent, and the message says so without quoting it.
    """
    if raw is None:
        return None
    remember_secret(raw)
    key = raw.strip()
    if not key:
        return None
    if any(not ch.isprintable() or ch.isspace() for ch in key):
        raise InvalidApiKey(
            f"{where} has a line break, tab or other invisible character inside it; "
            "copy the key again from Civitai (Account settings → API keys) and paste it alone")
    return key


class RedactingFilter(logging.Filter):
    """Takes every remembered key out of a record's message, traceback and stack.

    Attach it to handlers, not loggers: a logger's filters skip records from its children.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        with _lock:
            if not _secrets:
                return True
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
