"""Every query civdesk makes against the library database.

No SQL lives anywhere else. Methods return frozen dataclasses (snapshots), never ORM rows,
so their results can cross threads and outlive the session they were read in. Each call is
its own transaction unless the caller already holds ``db.session()`` in this thread.

Paths are stored as given (``os.fspath``), without resolving symlinks: the scanner decides
what a file's canonical path is.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session

from civdesk.core.civitai.schema import (
    REMOVED_MODES,
    Model,
    ModelFile,
    ModelVersion,
    early_access_until,
    is_removed_mode,
)
from civdesk.core.library.db import Database
from civdesk.core.library.search import filter_entries
from civdesk.core.library.tables import (
    IDENTIFIED_BY,
    LOOKUP_STATES,
    LocalFileRow,
    ModelRow,
    SettingRow,
    VersionFileRow,
    VersionRow,
)
from civdesk.core.longpaths import os_path

UNKNOWN_TYPE = "Unknown"  # the type of files no model is known for (sidebar, filters)

StrPath = str | os.PathLike[str]

# SQLite's default limit on bound parameters is 999 in older builds: an IN (…) list stays
# well below it, a multi-row INSERT fills it.
_CHUNK = 500
_MAX_PARAMETERS = 999


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _key(path: StrPath) -> str:
    return os.fspath(path)


def _db_time(moment: datetime) -> str:
    """A datetime as the ``UTCDateTime`` columns store it (naive UTC text, the form
    SQLAlchemy's SQLite dialect writes), for the plain bulk statements below."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(" ", "microseconds")


_encode_json = json.JSONEncoder().encode  # what the JSON columns hold (SQLAlchemy's default)


class _BulkInsert:
    """An INSERT of many rows as a few multi-row statements (``VALUES (…), (…), …``) of
    ready DBAPI values, in the session's transaction: SQLAlchemy's per-row compilation and
    type processing would cost more than SQLite itself.

    ``cursor.executemany`` steps SQLite once per row and hands the interpreter lock over
    at each step; during a scan the hashing, lookup and companion threads want that lock,
    so each hand-over waits for it back. 3,000 rows of 16 columns took 30 ms that way
    beside two busy threads (8 ms alone); as 62-row statements, 9 ms either way.
    """

    def __init__(self, head: str, group: str, tail: str = "") -> None:
        self.head, self.group, self.tail = head, group, tail
        self.rows_per_statement = max(1, _MAX_PARAMETERS // group.count("?"))
        self._sql: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        """The statement for ``rows`` rows (made once per row count)."""
        text = self._sql.get(rows)
        if text is None:
            text = self._sql[rows] = (
                f"{self.head} VALUES {', '.join([self.group] * rows)} {self.tail}".rstrip())
        return text

    def execute(self, s: Session, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` (each a tuple of DBAPI values for the group's parameters), in
        order: a later row with the key of an earlier one meets it as a conflict, as it
        would with one statement per row."""
        if not rows:
            return
        connection = s.connection()
        step = self.rows_per_statement
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            connection.exec_driver_sql(
                self.sql(len(chunk)), tuple([value for row in chunk for value in row]))


def _upsert(table: str, columns: tuple[str, ...], conflict: str,
            overrides: Mapping[str, str] | None = None) -> _BulkInsert:
    """INSERT … ON CONFLICT (conflict) DO UPDATE of every other column (``overrides``:
    column -> SQL expression instead of the new value)."""
    overrides = overrides or {}
    quoted = [f'"{c}"' for c in columns]
    updates = ", ".join(f'"{c}" = {overrides.get(c, f"excluded.{q}")}'
                        for c, q in zip(columns, quoted, strict=True) if c != conflict)
    return _BulkInsert(f"INSERT INTO {table} ({', '.join(quoted)})",
                       f"({', '.join('?' * len(columns))})",
                       f'ON CONFLICT ("{conflict}") DO UPDATE SET {updates}')


# ------------------------------------------------------------------------------ snapshots


@dataclass(frozen=True, slots=True)  # slots: a scan holds one per file (100,000: -60 MiB)
class LocalFile:
    """A file on disk as the library knows it."""

    id: int
    path: str
    library_root: str | None
    size: int
    mtime_ns: int
    inode: int | None
    sha256: str | None
    version_id: int | None
    file_id: int | None
    identified_by: str | None
    lookup_state: str
    looked_up_at: datetime | None
    preview_path: str | None
    info_path: str | None
    first_seen: datetime
    last_seen: datetime
    added_at: datetime
    device: int | None  # st_dev when last seen; None for rows older than schema v5
    offline_since: datetime | None
    #: Its bytes were hashed and matched the SHA256 Civitai publishes for its file.
    verified: bool = False
    #: What the user wrote in other tools (sidecars.USER_FIELDS); None: not read yet.
    user_meta: Mapping[str, Any] | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def identified(self) -> bool:
        return self.version_id is not None

    @property
    def offline(self) -> bool:
        """Kept while its drive or folder is away (unplugged, unmounted, unreadable)."""
        return self.offline_since is not None

    @classmethod
    def of(cls, row: LocalFileRow) -> LocalFile:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


_LOCAL_FILE_FIELDS = frozenset(f.name for f in fields(LocalFile))
# Reading plain columns in LocalFile's field order is several times faster than ORM rows.
_LOCAL_FILE_COLUMNS = tuple(getattr(LocalFileRow, f.name) for f in fields(LocalFile))


def _select_local_files() -> Any:
    return select(*_LOCAL_FILE_COLUMNS)
_UPDATABLE_FIELDS = _LOCAL_FILE_FIELDS - {"id", "first_seen", "added_at"}
_LOCAL_FILE_DATETIMES = tuple(i for i, f in enumerate(fields(LocalFile))
                              if f.type in ("datetime", "datetime | None"))
_LOCAL_FILE_JSON = ([f.name for f in fields(LocalFile)].index("user_meta"),)
_LOCAL_FILE_VERIFIED = [f.name for f in fields(LocalFile)].index("verified")


def _raw_local_files(s: Session, query: Any) -> list[LocalFile]:
    """The LocalFiles a select of :data:`_LOCAL_FILE_COLUMNS` finds (see :func:`_raw_rows`)."""
    verified = _LOCAL_FILE_VERIFIED
    out = []
    for row in _raw_rows(s, query, _LOCAL_FILE_DATETIMES, _LOCAL_FILE_JSON):
        row[verified] = bool(row[verified])
        out.append(LocalFile(*row))
    return out


def _raw_rows(s: Session, query: Any, times: Sequence[int], jsons: Sequence[int]
              ) -> Iterator[list[Any]]:
    """A select's rows read through the driver, the columns at ``times`` (UTCDateTime)
    and ``jsons`` (JSON) converted here as SQLAlchemy would: its SQLite DateTime parses
    each time with a regular expression and then sets its zone, a third of a 100,000-file
    rescan's time and of ``list``'s. Rows come one at a time from SQLite's cursor, so
    the raw rows and the converted ones are not all held at once."""
    compiled = query.compile(dialect=s.get_bind().dialect)
    params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    sqlite = s.connection().connection.driver_connection
    assert sqlite is not None  # a checked-out connection has its driver's
    raw = sqlite.execute(str(compiled), params)
    # Files registered together share their times: one datetime (immutable) per text.
    parsed: dict[str, datetime] = {}
    for values in raw:
        row = list(values)
        for i in times:
            text = row[i]
            if text is not None:
                moment = parsed.get(text)
                if moment is None:
                    moment = parsed[text] = _utc(text)
                row[i] = moment
        for i in jsons:
            text = row[i]
            # JSON null is stored as "null"; most user_meta hold "{}" (read, nothing there).
            row[i] = None if text is None or text == "null" else {} if text == "{}" else (
                json.loads(text))
        yield row


def _utc(text: str) -> datetime:
    """A UTCDateTime column's text (naive UTC, :func:`_db_time`) as an aware datetime."""
    try:
        return datetime.fromisoformat(text + "+00:00")  # cheaper than .replace(tzinfo=)
    except ValueError:  # a time written with its own zone
        value = datetime.fromisoformat(text)
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


@dataclass(frozen=True)
class FileMove:
    """One file found at a new path: the arguments of :meth:`Library.move_file` as a value."""

    old_path: StrPath
    new_path: StrPath
    size: int
    mtime_ns: int
    inode: int | None
    library_root: StrPath | None = None
    device: int | None = None  # st_dev at the new path (None: keep the stored one)


@dataclass(frozen=True)
class FileRecord:
    """One file to register: the arguments of :meth:`Library.register_file` as a value."""

    path: StrPath
    size: int
    mtime_ns: int
    inode: int | None
    sha256: str | None
    version_id: int | None = None
    file_id: int | None = None
    identified_by: str | None = "hash"
    library_root: StrPath | None = None
    preview_path: StrPath | None = None
    info_path: StrPath | None = None
    lookup_state: str | None = None  # default: "found" with a version, else "pending"
    looked_up_at: datetime | None = None  # default: now with a version, else left as stored
    device: int | None = None  # st_dev of the file (None: keep the stored one)
    #: ``sha256`` (of the file's bytes) is the SHA256 Civitai publishes for its file.
    verified: bool = False
    user_meta: Mapping[str, Any] | None = None  # None: keep the stored one

    def values(self, now: str) -> tuple[Any, ...]:
        """The ``local_files`` values to insert, in ``_REGISTER_COLUMNS`` order (``now`` as
        :func:`_db_time` text); raises ValueError when the record is invalid."""
        identified = self.version_id is not None
        if self.identified_by is not None and self.identified_by not in IDENTIFIED_BY:
            raise ValueError(f"identified_by must be one of {IDENTIFIED_BY}")
        lookup_state = self.lookup_state or ("found" if identified else "pending")
        if lookup_state not in LOOKUP_STATES:
            raise ValueError(f"lookup_state must be one of {LOOKUP_STATES}")
        looked_up_at = self.looked_up_at
        return (
            _key(self.path),
            _opt_key(self.library_root),
            self.size,
            self.mtime_ns,
            self.inode,
            self.sha256.upper() if self.sha256 else None,
            self.version_id,
            self.file_id if identified else None,
            self.identified_by if identified else None,
            lookup_state,
            _db_time(looked_up_at) if looked_up_at is not None else (now if identified else None),
            _opt_key(self.preview_path),
            _opt_key(self.info_path),
            now,
            now,
            now,
            self.device,
            None,  # a file registered is on disk: online
            bool(self.verified and self.sha256),
            None if self.user_meta is None else _encode_json(dict(self.user_meta)),
        )


_REGISTER_COLUMNS = (
    "path", "library_root", "size", "mtime_ns", "inode", "sha256", "version_id", "file_id",
    "identified_by", "lookup_state", "looked_up_at", "preview_path", "info_path",
    "first_seen", "last_seen", "added_at", "device", "offline_since", "verified",
    "user_meta",
)
assert set(_REGISTER_COLUMNS) == _LOCAL_FILE_FIELDS - {"id"}
_REGISTER = _upsert(
    "local_files", _REGISTER_COLUMNS, "path",
    {
        # first_seen and added_at survive a re-registration; with no new lookup to
        # record, looked_up_at keeps when the last one happened.
        "first_seen": '"first_seen"',
        "added_at": '"added_at"',
        "looked_up_at": 'coalesce(excluded."looked_up_at", "looked_up_at")',
        "device": 'coalesce(excluded."device", "device")',
        "user_meta": 'coalesce(excluded."user_meta", "user_meta")',
    },
)


@dataclass(frozen=True)
class LibraryEntry:
    """One local file joined with what is known of its model and version (the library view)."""

    path: str
    file_name: str
    size: int
    sha256: str | None
    model_id: int | None
    version_id: int | None
    model_name: str | None
    version_name: str | None
    type: str  # the model type, or UNKNOWN_TYPE
    base_model: str | None
    trained_words: tuple[str, ...]
    preview: str | None
    info: str | None
    added_at: datetime
    identified: bool
    nsfw: bool = False
    offline: bool = False  # its drive or folder is away: kept, not on disk now
    #: Its bytes matched the SHA256 Civitai publishes (see :attr:`LocalFile.verified`).
    verified: bool = False
    nsfw_level: int = 0  # the version's (Civitai's bit flags): R (4) and up are mature
    #: Since when Civitai has had its model or version removed (None: it is up); the
    #: library keeps everything it stored of it.
    removed_at: datetime | None = None
    #: How: "archived", "taken down" or "unpublished" (None while not removed).
    removed_how: str | None = None

    @property
    def removed(self) -> bool:
        """Removed from Civitai (archived, taken down, or its version unpublished)."""
        return self.removed_at is not None
    #: What the user wrote about it in other tools (:data:`sidecars.USER_FIELDS`).
    user: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class UpdateInfo:
    """A library model with a newer version on Civitai than any version on disk."""

    model_id: int
    model_name: str
    model_type: str
    installed_version_ids: tuple[int, ...]
    installed_version_names: tuple[str, ...]
    latest_version_id: int
    latest_version_name: str | None  # None until that version's details were fetched
    latest_early_access_ends_at: str | None = None  # ISO, as Civitai sent it

    @property
    def latest_name(self) -> str:
        """The newest version's name, or its id while its details are unknown."""
        return self.latest_version_name or f"version {self.latest_version_id}"

    def latest_label(self, now: datetime | None = None) -> str:
        """The newest version as people are told of it: ``v2.0`` or ``v2.0 (early access
        until 2026-12-10)`` (Civitai refuses its download until then unless paid for)."""
        until = self.early_access_until(now)
        return f"{self.latest_name} (early access until {until})" if until else self.latest_name

    def early_access_until(self, now: datetime | None = None) -> str | None:
        """The date (``YYYY-MM-DD``) until which the newest version is in early access (a
        download before then is refused unless paid for), or None when it is not."""
        return early_access_until(self.latest_early_access_ends_at, now)


# ------------------------------------------------------------------------------- library


class Library:
    """The library's queries. Thread-safe: share one instance."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __repr__(self) -> str:
        return f"Library({self.db!r})"

    # ------------------------------------------------------------------ Civitai metadata

    def upsert_model(self, model: Model) -> None:
        """Store a model from ``/models`` or ``/models/{id}`` with its versions and files.

        Versions and files Civitai no longer lists are kept: files on disk still refer to
        them, and an archived model lists no files at all.
        """
        now = _now()
        removed = is_removed_mode(model.mode)
        with self.db.session() as s:
            row = s.get(ModelRow, model.id)
            if row is not None and removed and row.raw is not None:
                # Civitai lists less of a removed model (no files, maybe no images): what
                # was stored stays, and only the removal is recorded.
                row.mode = model.mode
                row.removed_at = row.removed_at or now
                row.updated_at = now
                s.flush()
                _store_versions(s, [model.with_version_model(v) for v in model.versions], now)
                return
            row = row or ModelRow(id=model.id)
            row.removed_at = now if removed else None
            row.name = model.name
            row.type = model.type
            row.nsfw = model.nsfw
            row.creator = model.creator
            row.description = model.description
            row.tags = list(model.tags)
            row.mode = model.mode
            row.availability = model.availability
            row.raw = dict(model.raw) or None
            row.updated_at = now
            if model.latest_version is not None:
                row.latest_version_id = model.latest_version.id
            s.add(row)
            s.flush()
            _store_versions(s, [model.with_version_model(v) for v in model.versions], now)
            if not removed:
                _versions_back(s, [v.id for v in model.versions])

    def store_checked_models(
        self, models: Iterable[Model], asked: Iterable[int], checked_at: datetime | None = None
    ) -> None:
        """One update check's answer in one transaction and a few statements: what
        :meth:`upsert_model` and :meth:`record_update_check` do model by model.

        Each listed model is stored with its versions, files and latest version; every id
        ``asked`` gets ``checked_at`` as its check time, and one Civitai did not list keeps
        the latest version the library knew. One model at a time (two ORM transactions
        each) cost 2 ms per model, seconds for a library of thousands.
        """
        now = _now()
        stamp = _db_time(now)
        checked = _db_time(checked_at or now)
        rows: dict[int, tuple[Any, ...]] = {}
        versions: list[ModelVersion] = []
        listed: list[int] = []  # versions of models that are up: back if they were gone
        for model in models:
            latest = model.latest_version
            removed = is_removed_mode(model.mode)
            rows[model.id] = (
                model.id, model.name, model.type, model.nsfw, model.creator, model.description,
                _encode_json(list(model.tags)), model.mode, model.availability,
                latest.id if latest is not None else None, checked,
                _encode_json(dict(model.raw)) if model.raw else None, stamp,
                checked if removed else None,
            )
            versions.extend(model.with_version_model(v) for v in model.versions)
            if not removed:
                listed.extend(v.id for v in model.versions)
        unlisted = list(dict.fromkeys(i for i in asked if i not in rows))
        with self.db.session() as s:
            _MODELS.execute(s, list(rows.values()))
            _store_versions(s, versions, now)
            _versions_back(s, listed)
            connection = s.connection()
            for start in range(0, len(unlisted), _MAX_PARAMETERS - 1):
                chunk = unlisted[start : start + _MAX_PARAMETERS - 1]
                connection.exec_driver_sql(
                    "UPDATE models SET updates_checked_at = ? "
                    f"WHERE id IN ({', '.join('?' * len(chunk))})", (checked, *chunk))

    def upsert_version(self, version: ModelVersion) -> None:
        """Store a version in its ``/model-versions`` form (with ``modelId`` and ``model``).

        The model row is created from the version's model summary if missing; fields the
        summary lacks (description, tags, creator, latest version...) are left as they are.
        """
        self.upsert_versions([version])

    def upsert_versions(
        self, versions: Iterable[ModelVersion], *, encoded: Mapping[int, str] | None = None
    ) -> None:
        """:meth:`upsert_version` for many versions in one transaction and a few statements.

        Multi-row upserts per table (models, versions, files), a few statements per hundred
        rows: the scanner stores a hundred versions per batch. ``encoded`` (version id ->
        text) holds versions whose ``/model-versions`` JSON (:func:`version_form_json`) the
        caller has already encoded, e.g. for a ``.civitai.info``: stored as is, not encoded
        again.
        Raises ValueError (storing nothing) when a version has no ``modelId``.
        """
        latest = {v.id: v for v in versions}  # a version given twice: the last one wins
        for version in latest.values():
            if version.model_id is None:
                raise ValueError(f"version {version.id} has no modelId; cannot store it")
        if not latest:
            return
        now = _now()
        with self.db.session() as s:
            _keep_stored_over_sidecar_only(s, latest)
            _upsert_model_summaries(s, latest.values(), now)
            _store_versions(s, list(latest.values()), now, encoded or {})

    def version_json(self, version_id: int) -> dict[str, Any] | None:
        """The version's JSON in the ``/model-versions`` form, as last seen; None if unknown."""
        with self.db.session(write=False) as s:
            raw = s.scalar(select(VersionRow.raw).where(VersionRow.id == version_id))
            return dict(raw) if raw is not None else None

    def version(self, version_id: int) -> ModelVersion | None:
        """The stored version, parsed again from its JSON; None if unknown."""
        raw = self.version_json(version_id)
        return None if raw is None else ModelVersion.from_json(raw)

    def versions(self, version_ids: Iterable[int]) -> dict[int, ModelVersion]:
        """:meth:`version` of many ids in a few queries; unknown ids are left out."""
        ids = list(dict.fromkeys(version_ids))
        found: dict[int, ModelVersion] = {}
        with self.db.session(write=False) as s:
            for start in range(0, len(ids), _CHUNK):
                query = select(VersionRow.id, VersionRow.raw).where(
                    VersionRow.id.in_(ids[start : start + _CHUNK]))
                found.update((vid, ModelVersion.from_json(dict(raw)))
                             for vid, raw in s.execute(query) if raw is not None)
        return found

    def richer_version(self, version: ModelVersion) -> ModelVersion:
        """``version`` as Civitai answered it, or what the library stored of it when that
        answer is of a removed model (which lists no files, maybe no images): companions
        are then written from the richer data."""
        if version.model is None or not is_removed_mode(version.model.mode):
            return version
        return self.version(version.id) or version

    def version_by_sha256(self, sha256: str) -> ModelVersion | None:
        """The known version one of whose files has this SHA256 (saves an API call)."""
        with self.db.session(write=False) as s:
            raw = s.scalar(
                select(VersionRow.raw)
                .join(VersionFileRow, VersionFileRow.version_id == VersionRow.id)
                .where(VersionFileRow.sha256 == sha256.upper())
                .order_by(VersionRow.id.desc())
                .limit(1)
            )
            return None if raw is None else ModelVersion.from_json(dict(raw))

    # ------------------------------------------------------------------ removed from Civitai

    def mark_model_removed(self, version_id: int, mode: str = "Archived",
                           at: datetime | None = None) -> bool:
        """Record that Civitai removed the model of a version the library knows (a 410
        download names the version); whether the library knows it. Nothing stored of it
        changes but its mode (kept when already set) and, from the first time, when."""
        if mode not in REMOVED_MODES:
            raise ValueError(f"mode must be one of {REMOVED_MODES}")
        with self.db.session() as s:
            result = s.connection().exec_driver_sql(
                "UPDATE models SET mode = coalesce(mode, ?), "
                "removed_at = coalesce(removed_at, ?) "
                "WHERE id = (SELECT model_id FROM model_versions WHERE id = ?)",
                (mode, _db_time(at or _now()), version_id))
            return bool(result.rowcount)

    def mark_version_removed(self, version_id: int, at: datetime | None = None) -> bool:
        """Record that the site with all content answers 404 for a version the library
        knows (unpublished or deleted); whether it knows it. What was stored stays."""
        with self.db.session() as s:
            result = s.connection().exec_driver_sql(
                "UPDATE model_versions SET removed_at = coalesce(removed_at, ?) WHERE id = ?",
                (_db_time(at or _now()), version_id))
            return bool(result.rowcount)

    def removed_count(self) -> int:
        """Local files whose model or version Civitai removed (the "Removed" filter)."""
        query = (
            select(func.count(LocalFileRow.id))
            .select_from(LocalFileRow)
            .join(VersionRow, VersionRow.id == LocalFileRow.version_id)
            .join(ModelRow, ModelRow.id == VersionRow.model_id)
            .where(or_(ModelRow.removed_at.is_not(None), VersionRow.removed_at.is_not(None)))
        )
        with self.db.session(write=False) as s:
            return int(s.scalar(query) or 0)

    # ------------------------------------------------------------------------ local files

    def local_file(self, path: StrPath) -> LocalFile | None:
        with self.db.session(write=False) as s:
            row = s.execute(
                _select_local_files().where(LocalFileRow.path == _key(path))
            ).first()
            return None if row is None else LocalFile(*row)

    def local_files(self, root: StrPath | None = None) -> list[LocalFile]:
        """All files, or those registered under ``root`` (by library root or by path prefix)."""
        query = _select_local_files().order_by(LocalFileRow.path)
        if root is not None:
            key = _key(root).rstrip("/\\") or _key(root)
            under = [
                LocalFileRow.path.like(_escape_like(key.rstrip(sep) + sep) + "%", escape="\\")
                for sep in dict.fromkeys((os.sep, "/"))
            ]
            query = query.where(or_(LocalFileRow.library_root == key, *under))
        with self.db.session(write=False) as s:
            return _raw_local_files(s, query)

    def register_file(
        self,
        path: StrPath,
        *,
        size: int,
        mtime_ns: int,
        inode: int | None,
        sha256: str | None,
        version_id: int | None = None,
        file_id: int | None = None,
        identified_by: str | None = "hash",
        library_root: StrPath | None = None,
        preview_path: StrPath | None = None,
        info_path: StrPath | None = None,
        lookup_state: str | None = None,
        looked_up_at: datetime | None = None,
        device: int | None = None,
        verified: bool = False,
        user_meta: Mapping[str, Any] | None = None,
    ) -> LocalFile:
        """Add a file, or refresh the row already at ``path`` (keeping first_seen/added_at).

        ``identified_by`` is only recorded with a ``version_id``; ``lookup_state`` defaults
        to "found" with a version and "pending" without one. ``looked_up_at`` defaults to
        now with a version; without one, the stored value is kept unless it is given.
        ``verified``: ``sha256``, hashed from the file's bytes, is the SHA256 Civitai
        publishes for its file. ``user_meta``: what users wrote in other tools (None: keep
        what is stored).
        """
        record = FileRecord(
            path, size=size, mtime_ns=mtime_ns, inode=inode, sha256=sha256,
            version_id=version_id, file_id=file_id, identified_by=identified_by,
            library_root=library_root, preview_path=preview_path, info_path=info_path,
            lookup_state=lookup_state, looked_up_at=looked_up_at, device=device,
            verified=verified, user_meta=user_meta,
        )
        return self.register_files([record])[0]

    def register_files(self, records: Iterable[FileRecord]) -> list[LocalFile]:
        """:meth:`register_file` for many files in one transaction.

        Returns the stored rows in the order given (a path given twice: its last record).
        Raises ValueError, storing nothing, when a record is invalid.
        """
        with self.db.session() as s:
            paths = self._save_files(s, records)
            stored: dict[str, LocalFile] = {}
            for start in range(0, len(paths), _CHUNK):
                query = _select_local_files().where(
                    LocalFileRow.path.in_(paths[start : start + _CHUNK]))
                stored.update((row.path, LocalFile(*row)) for row in s.execute(query))
        return [stored[path] for path in paths]

    def save_files(self, records: Iterable[FileRecord]) -> int:
        """:meth:`register_files` without reading the rows back (a scan's bulk writes):
        multi-row upserts. Returns how many paths were stored; raises ValueError,
        storing nothing, when a record is invalid."""
        with self.db.session() as s:
            return len(self._save_files(s, records))

    def _save_files(self, s: Session, records: Iterable[FileRecord]) -> list[str]:
        now = _db_time(_now())
        rows = {}
        for record in records:
            values = record.values(now)
            rows[values[0]] = values  # a path given twice: its last record
        _REGISTER.execute(s, list(rows.values()))
        return list(rows)

    def update_file(self, file_id_or_path: int | StrPath, **changes: Any) -> LocalFile | None:
        """Change some fields of a file (by row id or path); None if there is no such file."""
        changes = _checked_changes(changes)
        with self.db.session() as s:
            row = self._file_row(s, file_id_or_path)
            if row is None:
                return None
            for name, value in changes.items():
                setattr(row, name, value)
            s.flush()
            return LocalFile.of(row)

    def update_files(self, updates: Iterable[tuple[int | StrPath, Mapping[str, Any]]]) -> int:
        """Apply ``(row id or path, {field: value})`` pairs in one transaction.

        Pairs that change the same fields share one executemany UPDATE, so a batch costs a
        few statements, not one per file. Returns how many rows were changed (unknown ids
        and paths are skipped). Raises TypeError, changing nothing, for a field that cannot
        be set.
        """
        groups: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
        for key, fields_ in updates:
            changes = _checked_changes(dict(fields_))
            if not changes:
                continue
            by = "id" if isinstance(key, int) else "path"
            params = {f"new_{name}": value for name, value in changes.items()}
            params["key"] = key if by == "id" else _key(key)  # type: ignore[arg-type]
            groups[by, tuple(sorted(changes))].append(params)
        changed = 0
        with self.db.session() as s:
            conn = s.connection()
            for (by, names), params_list in groups.items():
                stmt = (
                    update(LocalFileRow)
                    .where(getattr(LocalFileRow, by) == bindparam("key"))
                    .values({name: bindparam(f"new_{name}") for name in names})
                )
                result = conn.execute(stmt, params_list)
                changed += result.rowcount or 0
        return changed

    def move_file(
        self,
        old_path: StrPath,
        new_path: StrPath,
        *,
        size: int,
        mtime_ns: int,
        inode: int | None,
        library_root: StrPath | None = None,
        device: int | None = None,
    ) -> LocalFile | None:
        """Record that the file at ``old_path`` is now at ``new_path``.

        The row keeps its id, added_at, hash and identification. A row already at
        ``new_path`` (registered before the move was recognised) is replaced. Companion
        paths are left to the caller (``update_file``). None if ``old_path`` is unknown.
        """
        with self.db.session() as s:
            row = self._file_row(s, old_path)
            if row is None:
                return None
            if _key(old_path) != _key(new_path):
                s.execute(delete(LocalFileRow).where(LocalFileRow.path == _key(new_path)))
            row.path = _key(new_path)
            row.size = size
            row.mtime_ns = mtime_ns
            row.inode = inode
            if library_root is not None:
                row.library_root = _key(library_root)
            if device is not None:
                row.device = device
            row.offline_since = None
            row.last_seen = _now()
            s.flush()
            return LocalFile.of(row)

    def move_files(self, moves: Iterable[FileMove]) -> list[LocalFile | None]:
        """:meth:`move_file` for many files in one transaction and a few statements (a
        renamed folder of thousands of models); the moved rows, in order (None for an
        unknown old path).

        The old paths must differ from every new path of the same call, as a scan's moves
        do (a path still on disk keeps its row). One ORM transaction per file cost 1 ms
        each.
        """
        moves = list(moves)
        if not moves:
            return []
        stamp = _db_time(_now())
        params = [(_key(m.new_path), m.size, m.mtime_ns, m.inode, _opt_key(m.library_root),
                   m.device, stamp, _key(m.old_path)) for m in moves]
        replaced = [new for new, *_, old in params if new != old]
        with self.db.session() as s:
            _delete_paths(s, replaced)  # rows registered at a new path before the move
            s.connection().exec_driver_sql(
                "UPDATE local_files SET path = ?, size = ?, mtime_ns = ?, inode = ?, "
                "library_root = coalesce(?, library_root), device = coalesce(?, device), "
                "offline_since = NULL, last_seen = ? WHERE path = ?",
                params)
            moved: dict[str, LocalFile] = {}
            news = [new for new, *_ in params]
            for start in range(0, len(news), _CHUNK):
                query = _select_local_files().where(
                    LocalFileRow.path.in_(news[start : start + _CHUNK]))
                moved.update((row.path, LocalFile(*row)) for row in s.execute(query))
        return [moved.get(new) for new, *_ in params]

    def set_offline(self, paths: Iterable[StrPath], offline: bool = True,
                    since: datetime | None = None) -> int:
        """Mark files offline (their drive or folder is away; ``offline_since`` is kept
        from the first scan that found them away) or back online; how many changed."""
        keys = list(dict.fromkeys(_key(p) for p in paths))
        stamp = _db_time(since or _now()) if offline else None
        wanted = "offline_since IS NULL" if offline else "offline_since IS NOT NULL"
        changed = 0
        with self.db.session() as s:
            connection = s.connection()
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                result = connection.exec_driver_sql(
                    f"UPDATE local_files SET offline_since = ? WHERE {wanted} "
                    f"AND path IN ({', '.join('?' * len(chunk))})", (stamp, *chunk))
                changed += result.rowcount or 0
        return changed

    def remove_files(self, paths: Iterable[StrPath]) -> int:
        """Forget these files; return how many rows were removed."""
        keys = list(dict.fromkeys(_key(p) for p in paths))
        with self.db.session() as s:
            return _delete_paths(s, keys)

    def file_by_identity(self, size: int, mtime_ns: int, inode: int | None) -> LocalFile | None:
        """The file with this size, mtime and inode (a moved file keeps all three).

        With several (hard links) the one seen longest ago is returned: the scanner
        refreshes last_seen of files still in place, so that is the one that moved.
        """
        with self.db.session(write=False) as s:
            row = s.execute(
                _select_local_files()
                .where(
                    LocalFileRow.size == size,
                    LocalFileRow.mtime_ns == mtime_ns,
                    LocalFileRow.inode.is_(None) if inode is None else LocalFileRow.inode == inode,
                )
                .order_by(LocalFileRow.last_seen, LocalFileRow.id)
                .limit(1)
            ).first()
            return None if row is None else LocalFile(*row)

    def files_by_sha256(self, sha256: str) -> list[LocalFile]:
        with self.db.session(write=False) as s:
            rows = s.execute(
                _select_local_files()
                .where(LocalFileRow.sha256 == sha256.upper())
                .order_by(LocalFileRow.path)
            )
            return [LocalFile(*row) for row in rows]

    def unchanged_file(self, sha256: str) -> LocalFile | None:
        """A file of these bytes on disk now, unchanged since it was hashed (the size,
        time and inode it was hashed with: trusted without reading it, as a rescan trusts
        it); a changed or vanished one does not count."""
        for known in self.files_by_sha256(sha256):
            try:
                st = os.stat(os_path(known.path))
            except OSError:
                continue
            if (st.st_size, st.st_mtime_ns) == (known.size, known.mtime_ns) and (
                    known.inode is None or known.inode == st.st_ino):
                return known
        return None

    @staticmethod
    def _file_row(s: Session, file_id_or_path: int | StrPath) -> LocalFileRow | None:
        if isinstance(file_id_or_path, int):
            return s.get(LocalFileRow, file_id_or_path)
        return s.scalar(select(LocalFileRow).where(LocalFileRow.path == _key(file_id_or_path)))

    # ----------------------------------------------------------------------- library view

    def entries(
        self, model_type: str | None = None, search: str | None = None
    ) -> list[LibraryEntry]:
        """Every local file with its model and version, sorted by model then file name.

        ``model_type`` filters on the model type (``"Unknown"`` for unidentified files);
        ``search`` keeps entries where every word occurs in what :mod:`.search` looks in
        (case and accents ignored), as the window's search does. One SQL query.
        """
        query = _entries_query()
        if model_type == UNKNOWN_TYPE:
            query = query.where(ModelRow.id.is_(None))
        elif model_type is not None:
            query = query.where(ModelRow.type == model_type)
        with self.db.session(write=False) as s:
            rows = _raw_rows(s, query, _ENTRY_DATETIMES, _ENTRY_JSON)
            entries = filter_entries((_entry(row) for row in rows), search)
        entries.sort(key=lambda e: ((e.model_name or "~").casefold(), e.file_name.casefold()))
        return entries

    def type_counts(self) -> dict[str, int]:
        """Number of local files per model type (unidentified ones under ``"Unknown"``)."""
        kind = func.coalesce(ModelRow.type, UNKNOWN_TYPE)
        query = (
            select(kind, func.count(LocalFileRow.id))
            .select_from(LocalFileRow)
            .outerjoin(VersionRow, VersionRow.id == LocalFileRow.version_id)
            .outerjoin(ModelRow, ModelRow.id == VersionRow.model_id)
            .group_by(kind)
        )
        with self.db.session(write=False) as s:
            return {name: count for name, count in s.execute(query)}

    def paths_of_type(self, model_types: Iterable[str]) -> list[tuple[str, str]]:
        """(path, library folder) of the files of these model types the library folders
        hold now (not offline, not kept outside them): where the user keeps that type."""
        query = (
            select(LocalFileRow.path, LocalFileRow.library_root)
            .join(VersionRow, VersionRow.id == LocalFileRow.version_id)
            .join(ModelRow, ModelRow.id == VersionRow.model_id)
            .where(ModelRow.type.in_(list(model_types)),
                   LocalFileRow.library_root.is_not(None),
                   LocalFileRow.offline_since.is_(None))
        )
        with self.db.session(write=False) as s:
            return [(path, root) for path, root in s.execute(query) if root is not None]

    def duplicates(self) -> list[list[LocalFile]]:
        """Groups of two or more files with the same SHA256, each sorted by path.

        Paths that are one file on disk (hard links: the same inode, size and time) count
        once, by their first path: deleting a "copy" of them would free nothing, or lose
        the only one. So do rows whose file is no longer on disk (deleted outside the
        library folders, where no scan looks): the file left would look like a spare copy.
        """
        dup_hashes = (
            select(LocalFileRow.sha256)
            .where(LocalFileRow.sha256.is_not(None))
            .group_by(LocalFileRow.sha256)
            .having(func.count() > 1)
        )
        query = (
            _select_local_files()
            .where(LocalFileRow.sha256.in_(dup_hashes))
            .order_by(LocalFileRow.sha256, LocalFileRow.path)
        )
        groups: dict[str, dict[tuple[int | None, int, int] | str, LocalFile]] = {}
        with self.db.session(write=False) as s:
            for row in s.execute(query):
                file = LocalFile(*row)
                same_file = (file.inode, file.size, file.mtime_ns) if file.inode else file.path
                groups.setdefault(file.sha256 or "", {}).setdefault(same_file, file)
        candidates = [list(files.values()) for files in groups.values() if len(files) > 1]
        on_disk = [[f for f in group if os.path.lexists(os_path(f.path))] for group in candidates]
        return [group for group in on_disk if len(group) > 1]

    def installed_versions(self) -> dict[int, set[int]]:
        """model id -> ids of its versions on disk (known versions only).

        A version is on disk when one of its model files is (the primary file, or another
        ``Model``/``Pruned Model`` variant), not when only a side file is: a checkpoint
        whose baked VAE alone was downloaded is not "Downloaded". A file matched to the
        version without knowing which of its files it is counts.
        """
        query = (
            select(VersionRow.model_id, VersionRow.id)
            .join(LocalFileRow, LocalFileRow.version_id == VersionRow.id)
            .outerjoin(VersionFileRow, VersionFileRow.id == LocalFileRow.file_id)
            .where(or_(VersionFileRow.id.is_(None), VersionFileRow.primary.is_(True),
                       VersionFileRow.type.in_(MODEL_FILE_TYPES)))
            .distinct()
        )
        out: dict[int, set[int]] = defaultdict(set)
        with self.db.session(write=False) as s:
            for model_id, version_id in s.execute(query):
                out[model_id].add(version_id)
        return dict(out)

    # ---------------------------------------------------------------------- update checks

    def models_due_for_update_check(
        self, older_than: datetime, removed_older_than: datetime | None = None
    ) -> list[int]:
        """Ids of models with a file on disk not checked for updates since ``older_than``.

        A model removed from Civitai is skipped: it has no update to offer. It is asked
        about again only when ``removed_older_than`` is given and it was last checked
        before then, so that a model Civitai put back loses the mark.
        """
        older_than = _as_utc(older_than)
        not_checked_since = or_(ModelRow.updates_checked_at.is_(None),
                                ModelRow.updates_checked_at < older_than)
        due = ModelRow.removed_at.is_(None) & not_checked_since
        if removed_older_than is not None:
            due = due | (ModelRow.removed_at.is_not(None)
                         & not_checked_since
                         & (ModelRow.updates_checked_at < _as_utc(removed_older_than)))
        query = (
            select(ModelRow.id)
            .join(VersionRow, VersionRow.model_id == ModelRow.id)
            .join(LocalFileRow, LocalFileRow.version_id == VersionRow.id)
            .where(due)
            .distinct()
            .order_by(ModelRow.id)
        )
        with self.db.session(write=False) as s:
            return list(s.scalars(query))

    def removed_models_on_disk(self) -> int:
        """Models with a file on disk that Civitai removed (update checks skip them)."""
        query = (
            select(func.count(func.distinct(ModelRow.id)))
            .join(VersionRow, VersionRow.model_id == ModelRow.id)
            .join(LocalFileRow, LocalFileRow.version_id == VersionRow.id)
            .where(ModelRow.removed_at.is_not(None))
        )
        with self.db.session(write=False) as s:
            return int(s.scalar(query) or 0)

    def record_update_check(
        self, model_id: int, latest_version_id: int | None, checked_at: datetime | None = None
    ) -> None:
        """Remember the newest version Civitai lists for a model, and when we asked."""
        with self.db.session() as s:
            row = s.get(ModelRow, model_id)
            if row is None:
                return  # never stored: nothing in the library refers to it
            if latest_version_id is not None:
                row.latest_version_id = latest_version_id
            row.updates_checked_at = _as_utc(checked_at or _now())

    def available_updates(self) -> list[UpdateInfo]:
        """Library models whose latest known version is newer than every version on disk.

        "Newer" compares version ids, which Civitai hands out in increasing order.
        """
        installed = (
            select(
                ModelRow.id, ModelRow.name, ModelRow.type, ModelRow.latest_version_id,
                VersionRow.id, VersionRow.name,
            )
            .join(VersionRow, VersionRow.model_id == ModelRow.id)
            .join(LocalFileRow, LocalFileRow.version_id == VersionRow.id)
            .where(ModelRow.latest_version_id.is_not(None), ModelRow.removed_at.is_(None))
            .distinct()
            .order_by(ModelRow.id, VersionRow.id)
        )
        with self.db.session(write=False) as s:
            rows = s.execute(installed).all()
            latest_ids = {row[3] for row in rows}
            latest: dict[int, tuple[str, str | None]] = {}
            if latest_ids:
                names = select(VersionRow.id, VersionRow.name, VersionRow.early_access_ends_at
                               ).where(VersionRow.id.in_(latest_ids))
                latest = {version_id: (name, ends) for version_id, name, ends in s.execute(names)}
        by_model: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for row in rows:
            by_model[row[0]].append(row)
        updates = []
        for model_id, versions in by_model.items():
            _, name, kind, latest_id, _, _ = versions[0]
            if latest_id <= max(v[4] for v in versions):
                continue
            latest_name, early_access_ends = latest.get(latest_id, (None, None))
            updates.append(
                UpdateInfo(
                    model_id=model_id,
                    model_name=name,
                    model_type=kind,
                    installed_version_ids=tuple(v[4] for v in versions),
                    installed_version_names=tuple(v[5] for v in versions),
                    latest_version_id=latest_id,
                    latest_version_name=latest_name,
                    latest_early_access_ends_at=early_access_ends,
                )
            )
        updates.sort(key=lambda u: u.model_name.casefold())
        return updates

    # --------------------------------------------------------------------------- settings

    def settings_values(self) -> dict[str, Any]:
        """Every stored setting, key -> JSON value."""
        with self.db.session(write=False) as s:
            return {key: value for key, value in s.execute(select(SettingRow.key,
                                                                   SettingRow.value))}

    def save_settings(
        self, values: Mapping[str, Any], *, remove: Iterable[str] = (),
        list_changes: Mapping[str, tuple[Sequence[Any], Sequence[Any]]] | None = None,
    ) -> dict[str, list[Any]]:
        """Store these settings (JSON-serialisable values) and forget the ``remove`` keys.

        ``list_changes``: key -> (added, removed) items, applied to the list stored *now*
        in the same transaction, so that two processes adding a folder each keep both.
        Returns each such list as stored.
        """
        merged: dict[str, list[Any]] = {}
        with self.db.session() as s:
            for key, value in values.items():
                s.merge(SettingRow(key=key, value=value))
            for key, (added, removed) in (list_changes or {}).items():
                row = s.get(SettingRow, key)
                stored = list(row.value) if row is not None and isinstance(row.value, list) else []
                kept = [item for item in stored if item not in removed]
                merged[key] = kept + [item for item in added if item not in kept]
                s.merge(SettingRow(key=key, value=merged[key]))
            doomed = list(remove)
            if doomed:
                s.execute(delete(SettingRow).where(SettingRow.key.in_(doomed)))
        return merged


# ------------------------------------------------------------------------------- helpers


def _entries_query() -> Any:  # a wide Select, unpacked positionally by _entry()
    return (
        select(
            LocalFileRow.path, LocalFileRow.size, LocalFileRow.sha256, LocalFileRow.version_id,
            LocalFileRow.preview_path, LocalFileRow.info_path, LocalFileRow.added_at,
            LocalFileRow.offline_since, ModelRow.id, ModelRow.name, ModelRow.type, ModelRow.nsfw,
            VersionRow.name, VersionRow.base_model, VersionRow.trained_words,
            LocalFileRow.verified,
            VersionRow.nsfw_level, ModelRow.removed_at, ModelRow.mode, VersionRow.removed_at,
            LocalFileRow.user_meta,
        )
        .select_from(LocalFileRow)
        .outerjoin(VersionRow, VersionRow.id == LocalFileRow.version_id)
        .outerjoin(ModelRow, ModelRow.id == VersionRow.model_id)
    )


# The columns of _entries_query() that _raw_rows converts: added_at, offline_since, the
# model's and the version's removed_at; trained_words, user_meta.
_ENTRY_DATETIMES = (6, 7, 17, 19)
_ENTRY_JSON = (14, 20)


def _entry(row: Any) -> LibraryEntry:
    # Positional unpacking and os.path: this runs once per file of the library view.
    (path, size, sha256, version_id, preview, info, added_at, offline_since,
     model_id, model_name, kind, nsfw, version_name, base_model, trained_words, verified,
     nsfw_level, model_removed_at, mode, version_removed_at, user_meta) = row
    removed_at, removed_how = _removal(model_removed_at, mode, version_removed_at)
    return LibraryEntry(
        path=path,
        file_name=os.path.basename(path),
        size=size,
        sha256=sha256,
        model_id=model_id,
        version_id=version_id,
        model_name=model_name,
        version_name=version_name,
        type=kind or UNKNOWN_TYPE,
        base_model=base_model,
        trained_words=tuple(trained_words or ()),
        preview=preview,
        info=info,
        added_at=added_at,
        identified=version_id is not None,
        nsfw=bool(nsfw),
        offline=offline_since is not None,
        verified=bool(verified),
        nsfw_level=nsfw_level or 0,
        removed_at=removed_at,
        removed_how=removed_how,
        user=user_meta if isinstance(user_meta, dict) else {},
    )


def _removal(model_removed_at: datetime | None, mode: str | None,
             version_removed_at: datetime | None) -> tuple[datetime | None, str | None]:
    """(since when, how) an entry's model or version is removed from Civitai."""
    if model_removed_at is not None:
        return model_removed_at, "taken down" if mode == "TakenDown" else "archived"
    if version_removed_at is not None:
        return version_removed_at, "unpublished"
    return None, None


def _checked_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """``update_file`` fields, validated and normalised (UPPER hashes, paths as text)."""
    unknown = set(changes) - _UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"update_file: cannot set {', '.join(sorted(unknown))}")
    if changes.get("sha256"):
        changes["sha256"] = changes["sha256"].upper()
    for name in ("path", "library_root", "preview_path", "info_path"):
        if name in changes:
            changes[name] = _opt_key(changes[name])
    return changes


#: SQL: the row being upserted says Civitai removed the model.
_REMOVED_ANSWER = f"excluded.mode IN ({', '.join(repr(m) for m in REMOVED_MODES)})"
#: What a ``/models`` answer of a removed model lists less of (no files, no images…): kept.
_KEPT_WHEN_REMOVED = ("name", "type", "nsfw", "creator", "description", "tags",
                      "availability", "latest_version_id", "raw")


def _kept_when_removed(normal: Mapping[str, str]) -> dict[str, str]:
    # Kept only over a full answer stored before ("raw"), not over a row a summary made.
    return {column: f'CASE WHEN {_REMOVED_ANSWER} AND "raw" IS NOT NULL THEN "{column}" '
                    f'ELSE {normal.get(column, f"excluded.{chr(34)}{column}{chr(34)}")} END'
            for column in _KEPT_WHEN_REMOVED}


#: Full model rows (``/models`` answers); a model listed without versions keeps the latest
#: version the library knew. A removed model keeps what was stored and gets its
#: ``removed_at`` (from its first such answer); one that is up again loses it.
_MODELS = _upsert("models", (
    "id", "name", "type", "nsfw", "creator", "description", "tags", "mode", "availability",
    "latest_version_id", "updates_checked_at", "raw", "updated_at", "removed_at"), "id",
    {**_kept_when_removed(
        {"latest_version_id": 'coalesce(excluded."latest_version_id", "latest_version_id")'}),
     "removed_at": f'CASE WHEN {_REMOVED_ANSWER} THEN coalesce("removed_at", '
                   'excluded."removed_at") ELSE NULL END'})
_NEW_MODELS = _BulkInsert(
    "INSERT INTO models (id, name, type, nsfw, tags, updated_at)",
    "(?, '', 'Other', 0, '[]', ?)", "ON CONFLICT (id) DO NOTHING")
# A summary may come from a stored JSON or an old .civitai.info, not only from Civitai
# now: it records a removal it tells of but never clears one (a /models answer does).
_MODEL_SUMMARIES = _BulkInsert(
    "INSERT INTO models (id, name, type, nsfw, mode, removed_at, tags, updated_at)",
    "(?, ?, ?, ?, ?, ?, '[]', ?)",
    "ON CONFLICT (id) DO UPDATE SET name = coalesce(nullif(excluded.name, ''), name), "
    "type = coalesce(nullif(excluded.type, ''), type), nsfw = excluded.nsfw, "
    "mode = coalesce(excluded.mode, mode), "
    "removed_at = coalesce(removed_at, excluded.removed_at), "
    "updated_at = excluded.updated_at")


def _keep_stored_over_sidecar_only(s: Session, versions: dict[int, ModelVersion]) -> None:
    """Drop from ``versions`` those known only from a sidecar that the library already
    holds: what it holds (Civitai's JSON, or the same sidecar's) is never replaced by less."""
    partial = [vid for vid, v in versions.items() if v.from_sidecar_only]
    for start in range(0, len(partial), _CHUNK):
        chunk = partial[start : start + _CHUNK]
        for vid in s.scalars(select(VersionRow.id).where(VersionRow.id.in_(chunk))):
            del versions[vid]


def _upsert_model_summaries(s: Session, versions: Iterable[ModelVersion], now: datetime) -> None:
    """Create missing model rows, and refresh what a ``/model-versions`` summary tells.

    Fields a summary lacks (description, tags, creator, latest version…) are left alone; an
    empty summary name or type never blanks a known one (a new model without a type is
    "Other").
    """
    bare: dict[int, None] = {}
    summaries: dict[int, tuple[Any, ...]] = {}
    for version in versions:
        assert version.model_id is not None
        summary = version.model
        if summary is not None:  # several versions of one model: the last summary wins
            summaries[version.model_id] = (
                summary.name, summary.type, summary.nsfw, summary.mode,
                _db_time(now) if is_removed_mode(summary.mode) else None)
        else:
            bare[version.model_id] = None
    stamp = _db_time(now)
    _NEW_MODELS.execute(s, [(model_id, stamp) for model_id in bare
                            if model_id not in summaries])
    _MODEL_SUMMARIES.execute(s, [(model_id, *summary, stamp)
                                 for model_id, summary in summaries.items()])
    if any(not summary[1] for summary in summaries.values()):
        s.connection().exec_driver_sql("UPDATE models SET type = 'Other' WHERE type = ''")


_VERSIONS_COLUMNS = ("id", "model_id", "name", "base_model", "trained_words", "published_at",
                    "early_access_ends_at", "nsfw_level", "raw", "fetched_at")
#: A version of a removed model as Civitai answers now (no files, maybe no images): stored
#: only when the library had nothing of it, never over what it stored before.
_VERSIONS_OF_REMOVED = _BulkInsert(
    f"INSERT INTO model_versions ({', '.join(_VERSIONS_COLUMNS)})",
    f"({', '.join('?' * len(_VERSIONS_COLUMNS))})", "ON CONFLICT (id) DO NOTHING")
_VERSIONS = _upsert("model_versions", _VERSIONS_COLUMNS, "id")
_FILES = _upsert("version_files", (
    "id", "version_id", "name", "size_kb", "type", "primary", "format", "fp", "size",
    "quant_type", "sha256", "autov1", "autov2", "autov3", "crc32", "blake3"), "id")


def _store_versions(
    s: Session, versions: list[ModelVersion], now: datetime,
    encoded: Mapping[int, str] | None = None,
) -> None:
    """Upsert version rows and their files: multi-row statements per table."""
    if not versions:
        return
    encoded = encoded or {}
    stamp = _db_time(now)
    version_rows: list[tuple[Any, ...]] = []
    removed_rows: list[tuple[Any, ...]] = []
    file_rows: dict[int, tuple[Any, ...]] = {}
    for version in versions:
        assert version.model_id is not None
        raw = encoded.get(version.id)
        removed = version.model is not None and is_removed_mode(version.model.mode)
        (removed_rows if removed else version_rows).append((
            version.id,
            version.model_id,
            version.name,
            version.base_model,
            _encode_json(list(version.trained_words)),
            version.published_at,
            version.early_access_ends_at,
            version.nsfw_level,
            raw if raw is not None else _encode_json(version_form_json(version)),
            stamp,
        ))
        for file in version.files:
            file_rows[file.id] = _file_row_values(version.id, file)
    _VERSIONS.execute(s, version_rows)
    _VERSIONS_OF_REMOVED.execute(s, removed_rows)
    _FILES.execute(s, list(file_rows.values()))


def _versions_back(s: Session, version_ids: Sequence[int]) -> None:
    """Versions a ``/models`` answer of a model that is up lists: published (again)."""
    connection = s.connection()
    for start in range(0, len(version_ids), _MAX_PARAMETERS):
        chunk = version_ids[start : start + _MAX_PARAMETERS]
        connection.exec_driver_sql(
            "UPDATE model_versions SET removed_at = NULL WHERE removed_at IS NOT NULL "
            f"AND id IN ({', '.join('?' * len(chunk))})", tuple(chunk))


def _file_row_values(version_id: int, file: ModelFile) -> tuple[Any, ...]:
    hashes = file.hashes
    meta = file.metadata
    return (
        file.id, version_id, file.name, file.size_kb, file.type, file.primary, meta.format,
        meta.fp, meta.size, meta.quant_type, hashes.get("SHA256"), hashes.get("AutoV1"),
        hashes.get("AutoV2"), hashes.get("AutoV3"), hashes.get("CRC32"),
        hashes.get("BLAKE3"),
    )


def version_form_json(version: ModelVersion) -> dict[str, Any]:
    """The version's raw JSON, completed to the /model-versions form (modelId + model):
    what the library stores for it."""
    raw = dict(version.raw)
    raw.setdefault("id", version.id)
    if version.model_id is not None:
        raw["modelId"] = version.model_id
    if "model" not in raw and version.model is not None:
        m = version.model
        raw["model"] = {"name": m.name, "type": m.type, "nsfw": m.nsfw, "poi": m.poi}
        if m.mode is not None:
            raw["model"]["mode"] = m.mode
    return raw


#: Civitai's file types that are the model itself (others are side files: VAE, Config…).
MODEL_FILE_TYPES = ("Model", "Pruned Model")


def _opt_key(path: StrPath | None) -> str | None:
    return None if path is None else _key(path)


def _delete_paths(s: Session, keys: list[str]) -> int:
    """Delete the ``local_files`` rows at these paths (keys), a chunk per statement; how
    many there were."""
    removed = 0
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        result = s.execute(delete(LocalFileRow).where(LocalFileRow.path.in_(chunk)))
        removed += result.rowcount or 0  # type: ignore[attr-defined]
    return removed


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


__all__ = [
    "UNKNOWN_TYPE", "FileMove", "FileRecord", "Library", "LibraryEntry", "LocalFile", "UpdateInfo",
]
