"""The one library search: what a search looks in, and how words are compared.

Used by :meth:`Library.entries` (``search=``) and by the window's Models page (which folds
each entry once per read of the library and compares as the user types). Every word must
occur; case and accents are ignored ("cafe" finds "Café", "sdxl" finds "SDXL 1.0").
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from civdesk.core.library.repository import LibraryEntry

#: What the user wrote in other tools that a search also looks in.
_USER_TEXT_FIELDS = ("title", "notes", "activation_text")


def search_fold(text: str) -> str:
    """``text`` as searches compare it: case-folded, accents dropped ("cafe" finds
    "Café", "unicode" finds "Ünïcödé"), full-width letters made plain ("ＳＤＸＬ")."""
    folded = text.casefold()
    if folded.isascii():
        return folded
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def search_terms(query: str | None) -> tuple[str, ...]:
    """The folded words of a query; none for an empty or blank one."""
    return tuple(search_fold(query or "").split())


def search_text(entry: LibraryEntry) -> str:
    """What a search looks in, folded: the model and version names, the file name, the
    base model, the trigger words, and the title, notes and tags written in other tools."""
    user = entry.user
    tags = user.get("tags")
    return search_fold("\n".join((
        entry.model_name or "", entry.version_name or "", entry.file_name,
        entry.base_model or "", *entry.trained_words,
        *(str(user[k]) for k in _USER_TEXT_FIELDS if user.get(k)),
        *(str(t) for t in (tags if isinstance(tags, list) else ())),
    )))


def matches(text: str, terms: Iterable[str]) -> bool:
    """Every (folded) term occurs in the (folded) ``text``."""
    return all(term in text for term in terms)


def filter_entries(entries: Iterable[LibraryEntry], query: str | None) -> list[LibraryEntry]:
    """The entries a query finds, in their order (all of them for a blank query)."""
    terms = search_terms(query)
    if not terms:
        return list(entries)
    return [e for e in entries if matches(search_text(e), terms)]
