"""The SQLAlchemy 2.0 tables of the library database.

Rows mirror what Civitai told us (``models``, ``model_versions``, ``version_files``), what
is on disk (``local_files``), the download queue (``download_tasks``) and the settings.
Only :mod:`civdesk.core.library.repository` queries them; everyone else gets frozen
snapshots.

Local files and download tasks deliberately carry version/file ids *without* foreign keys:
a file can be identified (by a sidecar, a hash, a finished download) before the version's
metadata has been fetched, and deleting stale metadata must never delete a user's file row.

Changing a column here needs a step in :mod:`civdesk.core.library.migrations`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime (SQLite has no time zones; naive values are taken as UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy's documented class attribute
        dict[str, Any]: JSON,
        list[str]: JSON,
        datetime: UTCDateTime,
    }


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String, default="")
    type: Mapped[str] = mapped_column(String, default="Other", index=True)
    nsfw: Mapped[bool] = mapped_column(default=False)
    creator: Mapped[str | None]
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(default=list)
    mode: Mapped[str | None]  # "Archived" | "TakenDown" | None
    availability: Mapped[str | None]
    latest_version_id: Mapped[int | None]
    updates_checked_at: Mapped[datetime | None]
    raw: Mapped[dict[str, Any] | None]  # the /models/{id} JSON as last seen
    updated_at: Mapped[datetime]
    # Since when Civitai has had it archived or taken down (schema v8); None while it is up.
    # What the library stored before stays: Civitai's answer then lists less.
    removed_at: Mapped[datetime | None]


class VersionRow(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String, default="")
    base_model: Mapped[str | None]
    trained_words: Mapped[list[str]] = mapped_column(default=list)
    published_at: Mapped[str | None]  # ISO text as Civitai sent it
    early_access_ends_at: Mapped[str | None]
    # Civitai's bit flags (1 PG … 4 R, 8 X, 16 XXX): R and up live on civitai.red.
    nsfw_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    raw: Mapped[dict[str, Any]]  # the /model-versions/{id} JSON as last seen
    fetched_at: Mapped[datetime]
    # Since when the site with all content has answered 404 for it (schema v8): unpublished
    # or deleted. None while Civitai has it.
    removed_at: Mapped[datetime | None]


class VersionFileRow(Base):
    __tablename__ = "version_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str]
    size_kb: Mapped[float] = mapped_column(Float, default=0.0)
    type: Mapped[str] = mapped_column(String, default="Model")
    primary: Mapped[bool] = mapped_column(default=False)
    format: Mapped[str | None]
    fp: Mapped[str | None]
    size: Mapped[str | None]  # "full" | "pruned"
    quant_type: Mapped[str | None]
    sha256: Mapped[str | None] = mapped_column(index=True)
    autov1: Mapped[str | None]
    autov2: Mapped[str | None] = mapped_column(index=True)
    autov3: Mapped[str | None]
    crc32: Mapped[str | None]
    blake3: Mapped[str | None]


IDENTIFIED_BY = ("hash", "sidecar", "manual", "download")
# "sidecar": identified by a companion file naming its hash, Civitai not asked yet.
LOOKUP_STATES = ("pending", "found", "unknown", "error", "sidecar")


class LocalFileRow(Base):
    __tablename__ = "local_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(String, unique=True)  # the unique index serves lookups
    library_root: Mapped[str | None] = mapped_column(index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    inode: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(index=True)
    version_id: Mapped[int | None] = mapped_column(index=True)
    file_id: Mapped[int | None]
    identified_by: Mapped[str | None]  # one of IDENTIFIED_BY, None while unidentified
    lookup_state: Mapped[str] = mapped_column(String, default="pending")  # LOOKUP_STATES
    looked_up_at: Mapped[datetime | None]
    preview_path: Mapped[str | None]
    info_path: Mapped[str | None]
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    added_at: Mapped[datetime]
    # st_dev of the file when last seen (schema v5): a file missing from a folder that is
    # now on another device (an empty mount point, a new drive) is offline, not gone.
    device: Mapped[int | None] = mapped_column(BigInteger)
    # Since when the file's drive or folder has been away (schema v5); None while present.
    offline_since: Mapped[datetime | None]
    # Its bytes were hashed and matched the SHA256 Civitai publishes for its file (schema
    # v6); False for a file Civitai gave no SHA256 for, identified by name or by hand.
    verified: Mapped[bool] = mapped_column(default=False, server_default="0")
    # What the user wrote about it in other tools (schema v9): A1111's ``.json``, Lora
    # Manager's notes/tags/favourite, Stability Matrix's title (see sidecars.USER_FIELDS).
    # None: not read yet; {} read, nothing there.
    user_meta: Mapped[dict[str, Any] | None]

    # Move detection looks files up by what survives a rename.
    __table_args__ = (Index("ix_local_files_identity", "size", "mtime_ns", "inode"),)


class DownloadTaskRow(Base):
    """One entry of the download queue (persisted by ``civdesk.core.downloads``)."""

    __tablename__ = "download_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(index=True)
    file_id: Mapped[int | None]
    model_id: Mapped[int | None]
    model_name: Mapped[str | None]
    version_name: Mapped[str | None]
    model_type: Mapped[str | None]
    file_name: Mapped[str | None]
    dest_dir: Mapped[str | None]
    dest_path: Mapped[str | None]
    part_path: Mapped[str | None]
    expected_sha256: Mapped[str | None]
    state: Mapped[str] = mapped_column(String, default="queued", index=True)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None]
    position: Mapped[int] = mapped_column(Integer, default=0, index=True)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Who is downloading it (schema v2), for the user: the process's lock is what counts.
    # Set with state "downloading" (started_at is when it took the task), cleared after.
    owner_pid: Mapped[int | None]
    owner_host: Mapped[str | None]
    # Completed without a download (schema v3): the library held the very file already.
    already_present: Mapped[bool] = mapped_column(default=False, server_default="0")
    # The user chose to download it although Civitai's scans flagged it (schema v4).
    allow_flagged: Mapped[bool] = mapped_column(default=False, server_default="0")
    # What a completed download was checked against (schema v6): "sha256", "size" (Civitai
    # published no SHA256) or "nothing" (nor a size); None before.
    checked: Mapped[str | None]


class SettingRow(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
