"""Schema versions of the library database and the steps between them.

The version lives in ``PRAGMA user_version``. A new database is created straight from the
current tables (:mod:`civdesk.core.library.tables`) and stamped :data:`SCHEMA_VERSION`; an
older one is brought forward by running, in order, every :class:`Migration` whose ``version``
is above its own — all in one transaction, after a backup copy was taken.

To change the schema in a release: edit ``tables.py``, append a ``Migration`` that turns
the previous schema into the new one with plain SQL (never the ORM: it describes only the
newest schema), and bump :data:`SCHEMA_VERSION`. ``tests/core/test_db.py`` builds the
version-1 database by hand, so a forgotten step fails a test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection


@dataclass(frozen=True)
class Migration:
    """Brings a database from ``version - 1`` to ``version``."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _v2_download_owner(conn: Connection) -> None:
    # Rows keep their state: a v1 "downloading" task has no owner and no lock, so the first
    # queue to start finds it stale and puts it back in line (resuming its .part).
    conn.exec_driver_sql("ALTER TABLE download_tasks ADD COLUMN owner_pid INTEGER")
    conn.exec_driver_sql("ALTER TABLE download_tasks ADD COLUMN owner_host VARCHAR")


def _v3_already_present(conn: Connection) -> None:
    conn.exec_driver_sql(
        "ALTER TABLE download_tasks ADD COLUMN already_present BOOLEAN NOT NULL DEFAULT 0")


def _v4_allow_flagged(conn: Connection) -> None:
    conn.exec_driver_sql(
        "ALTER TABLE download_tasks ADD COLUMN allow_flagged BOOLEAN NOT NULL DEFAULT 0")


def _v5_offline_files(conn: Connection) -> None:
    # Existing rows have no device yet: the next scan that sees each file records it.
    conn.exec_driver_sql("ALTER TABLE local_files ADD COLUMN device BIGINT")
    conn.exec_driver_sql("ALTER TABLE local_files ADD COLUMN offline_since DATETIME")


def _v6_verified(conn: Connection) -> None:
    conn.exec_driver_sql(
        "ALTER TABLE local_files ADD COLUMN verified BOOLEAN NOT NULL DEFAULT 0")
    # Verified: the hash of its bytes is the SHA256 Civitai publishes for a file of its
    # version (what a download checked, or a scan's lookup by hash found).
    conn.exec_driver_sql(
        "UPDATE local_files SET verified = 1 WHERE sha256 IS NOT NULL AND EXISTS ("
        "SELECT 1 FROM version_files WHERE version_files.version_id = local_files.version_id"
        " AND version_files.sha256 = local_files.sha256)")
    conn.exec_driver_sql("ALTER TABLE download_tasks ADD COLUMN checked VARCHAR")


def _v7_version_nsfw_level(conn: Connection) -> None:
    # Filled from the JSON already stored: "Open on Civitai" picks the site by it.
    conn.exec_driver_sql(
        "ALTER TABLE model_versions ADD COLUMN nsfw_level INTEGER NOT NULL DEFAULT 0")
    conn.exec_driver_sql(
        "UPDATE model_versions SET nsfw_level = coalesce(json_extract(raw, '$.nsfwLevel'), 0) "
        "WHERE json_type(raw, '$.nsfwLevel') = 'integer'")


def _v8_removed(conn: Connection) -> None:
    # A model already stored as archived or taken down is removed since it was stored.
    conn.exec_driver_sql("ALTER TABLE models ADD COLUMN removed_at DATETIME")
    conn.exec_driver_sql("ALTER TABLE model_versions ADD COLUMN removed_at DATETIME")
    conn.exec_driver_sql(
        "UPDATE models SET removed_at = updated_at WHERE mode IN ('Archived', 'TakenDown')")


def _v9_user_meta(conn: Connection) -> None:
    # NULL: not read yet. The next scan reads the notes other tools left beside each file.
    conn.exec_driver_sql("ALTER TABLE local_files ADD COLUMN user_meta JSON")


# Version 1 is the first released schema; it is created from tables.py, so it has no step.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "download_tasks.owner_pid/owner_host (who is downloading a task)",
              _v2_download_owner),
    Migration(3, "download_tasks.already_present (completed without a download)",
              _v3_already_present),
    Migration(4, "download_tasks.allow_flagged (the user chose a file Civitai flagged)",
              _v4_allow_flagged),
    Migration(5, "local_files.device/offline_since (files on a drive that is away)",
              _v5_offline_files),
    Migration(6, "local_files.verified (hash matched Civitai's SHA256), download_tasks.checked",
              _v6_verified),
    Migration(7, "model_versions.nsfw_level (the site that shows a version)",
              _v7_version_nsfw_level),
    Migration(8, "models/model_versions.removed_at (removed from Civitai, and since when)",
              _v8_removed),
    Migration(9, "local_files.user_meta (notes, weights, tags users wrote in other tools)",
              _v9_user_meta),
)

SCHEMA_VERSION = 1 + len(MIGRATIONS)


def check_steps(steps: Sequence[Migration], base_version: int = 1) -> int:
    """Validate that ``steps`` number ``base_version + 1, + 2, ...``; return the final version."""
    expected = base_version
    for step in steps:
        expected += 1
        if step.version != expected:
            raise ValueError(f"migration {step.description!r} is numbered {step.version}, "
                             f"expected {expected}")
    return expected
