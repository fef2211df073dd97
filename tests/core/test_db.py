"""The library database: pragmas, sessions across threads, migrations, broken files."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from civdesk.core.errors import CivdeskError
from civdesk.core.library import (
    SCHEMA_VERSION,
    CorruptDatabase,
    Database,
    Library,
    Migration,
    MigrationFailed,
    NewerDatabase,
)
from civdesk.core.library.tables import SettingRow

# The version-1 schema exactly as the first release created it, written out by hand so
# that a change to tables.py without a migration step fails test_v1_database_opens_intact.
V1_SCHEMA = """
CREATE TABLE models (
    id INTEGER NOT NULL, name VARCHAR NOT NULL, type VARCHAR NOT NULL, nsfw BOOLEAN NOT NULL,
    creator VARCHAR, description TEXT, tags JSON NOT NULL, mode VARCHAR, availability VARCHAR,
    latest_version_id INTEGER, updates_checked_at DATETIME, raw JSON,
    updated_at DATETIME NOT NULL, PRIMARY KEY (id));
CREATE INDEX ix_models_type ON models (type);
CREATE TABLE model_versions (
    id INTEGER NOT NULL, model_id INTEGER NOT NULL, name VARCHAR NOT NULL,
    base_model VARCHAR, trained_words JSON NOT NULL, published_at VARCHAR,
    early_access_ends_at VARCHAR, raw JSON NOT NULL, fetched_at DATETIME NOT NULL,
    PRIMARY KEY (id), FOREIGN KEY(model_id) REFERENCES models (id) ON DELETE CASCADE);
CREATE INDEX ix_model_versions_model_id ON model_versions (model_id);
CREATE TABLE version_files (
    id INTEGER NOT NULL, version_id INTEGER NOT NULL, name VARCHAR NOT NULL,
    size_kb FLOAT NOT NULL, type VARCHAR NOT NULL, "primary" BOOLEAN NOT NULL,
    format VARCHAR, fp VARCHAR, size VARCHAR, quant_type VARCHAR, sha256 VARCHAR,
    autov1 VARCHAR, autov2 VARCHAR, autov3 VARCHAR, crc32 VARCHAR, blake3 VARCHAR,
    PRIMARY KEY (id),
    FOREIGN KEY(version_id) REFERENCES model_versions (id) ON DELETE CASCADE);
CREATE INDEX ix_version_files_autov2 ON version_files (autov2);
CREATE INDEX ix_version_files_sha256 ON version_files (sha256);
CREATE INDEX ix_version_files_version_id ON version_files (version_id);
CREATE TABLE local_files (
    id INTEGER NOT NULL, path VARCHAR NOT NULL, library_root VARCHAR, size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL, inode BIGINT, sha256 VARCHAR, version_id INTEGER,
    file_id INTEGER, identified_by VARCHAR, lookup_state VARCHAR NOT NULL,
    looked_up_at DATETIME, preview_path VARCHAR, info_path VARCHAR,
    first_seen DATETIME NOT NULL, last_seen DATETIME NOT NULL, added_at DATETIME NOT NULL,
    PRIMARY KEY (id), UNIQUE (path));
CREATE INDEX ix_local_files_sha256 ON local_files (sha256);
CREATE INDEX ix_local_files_identity ON local_files (size, mtime_ns, inode);
CREATE INDEX ix_local_files_library_root ON local_files (library_root);
CREATE INDEX ix_local_files_version_id ON local_files (version_id);
CREATE TABLE download_tasks (
    id INTEGER NOT NULL, version_id INTEGER NOT NULL, file_id INTEGER, model_id INTEGER,
    model_name VARCHAR, version_name VARCHAR, model_type VARCHAR, file_name VARCHAR,
    dest_dir VARCHAR, dest_path VARCHAR, part_path VARCHAR, expected_sha256 VARCHAR,
    state VARCHAR NOT NULL, bytes_done BIGINT NOT NULL, bytes_total BIGINT, error TEXT,
    error_kind VARCHAR, position INTEGER NOT NULL, created_at DATETIME NOT NULL,
    started_at DATETIME, finished_at DATETIME, PRIMARY KEY (id));
CREATE INDEX ix_download_tasks_version_id ON download_tasks (version_id);
CREATE INDEX ix_download_tasks_state ON download_tasks (state);
CREATE INDEX ix_download_tasks_position ON download_tasks (position);
CREATE TABLE settings ("key" VARCHAR NOT NULL, value JSON NOT NULL, PRIMARY KEY ("key"));
"""

V1_DATA = """
INSERT INTO models VALUES (7, 'Old Lora', 'LORA', 0, 'someone', NULL, '["style"]', NULL,
    'Public', 9, NULL, NULL, '2024-01-01 00:00:00.000000');
INSERT INTO model_versions VALUES (8, 7, 'v1', 'SD 1.5', '["oldtrigger"]', NULL, NULL,
    '{"id": 8, "modelId": 7, "name": "v1", "nsfwLevel": 12,
      "model": {"name": "Old Lora", "type": "LORA"}}',
    '2024-01-01 00:00:00.000000');
INSERT INTO version_files VALUES (80, 8, 'old.safetensors', 1024.0, 'Model', 1,
    'SafeTensor', 'fp16', 'pruned', NULL, 'ABC123', NULL, NULL, NULL, NULL, NULL);
INSERT INTO local_files VALUES (1, '/lib/Lora/old.safetensors', '/lib', 1048576, 5, 42,
    'ABC123', 8, 80, 'hash', 'found', NULL, NULL, NULL, '2024-01-01 00:00:00.000000',
    '2024-01-01 00:00:00.000000', '2024-01-01 00:00:00.000000');
INSERT INTO settings VALUES ('allow_nsfw', 'true');
"""


def make_v1_database(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA + V1_DATA)
        conn.execute("PRAGMA user_version = 1")
    conn.close()


def schema_of(path: Path) -> dict[str, list[str]]:
    """Columns of every table and the names of every index: what queries depend on."""
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        out = {t: sorted(r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')) for t in tables}
        out["<indexes>"] = sorted(r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"))
    conn.close()
    return out


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()
    return int(version)


@pytest.fixture
def db(tmp_path: Path):
    database = Database.open(tmp_path / "library.sqlite3")
    yield database
    database.close()


def test_new_database_is_stamped_and_configured(db: Database) -> None:
    assert user_version(db.path) == SCHEMA_VERSION == db.schema_version
    with db.engine.connect() as conn:
        pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("busy_timeout") >= 1000
        assert pragma("temp_store") == 2  # MEMORY: no statement journals in /var/tmp


def test_reopening_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite3"
    with Database.open(path) as first, first.session() as s:
        s.add(SettingRow(key="k", value={"a": [1, 2]}))
    with Database.open(path) as again, again.session() as s:
        assert s.get(SettingRow, "k").value == {"a": [1, 2]}
    # No migration: the one backup is the day's, taken when an existing library opened.
    [daily] = (tmp_path / "backups").iterdir()
    assert daily.name.startswith("library-") and daily.name.endswith("-daily.sqlite3")


def test_session_commits_on_success_and_rolls_back_on_error(db: Database) -> None:
    with db.session() as s:
        s.add(SettingRow(key="kept", value=1))
    with pytest.raises(RuntimeError), db.session() as s:
        s.add(SettingRow(key="lost", value=2))
        s.flush()
        raise RuntimeError("boom")
    with db.session(write=False) as s:
        assert s.scalars(select(SettingRow.key)).all() == ["kept"]


def test_nested_sessions_in_a_thread_share_one_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as outer:
        with db.session() as inner:
            assert inner is outer
            inner.add(SettingRow(key="inner", value=1))
        raise RuntimeError("the outer block fails after the inner one finished")
    with db.session() as s:
        assert s.get(SettingRow, "inner") is None  # the inner block did not commit alone


def test_concurrent_read_modify_write_from_many_threads(db: Database) -> None:
    """Read-then-write transactions in parallel: no 'database is locked', no lost update."""
    with db.session() as s:
        s.add(SettingRow(key="counter", value=0))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                with db.session() as s:
                    row = s.get(SettingRow, "counter")
                    row.value = row.value + 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.session(write=False) as s:
        assert s.get(SettingRow, "counter").value == 150


def test_readers_do_not_wait_for_a_writer(db: Database) -> None:
    holding = threading.Event()
    release = threading.Event()

    def writer() -> None:
        with db.session() as s:
            s.add(SettingRow(key="uncommitted", value=1))
            s.flush()
            holding.set()
            release.wait(10)

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with db.session(write=False) as s:
            assert s.get(SettingRow, "uncommitted") is None
        assert time.monotonic() - started < 2
    finally:
        release.set()
        t.join()
    with db.session(write=False) as s:
        assert s.get(SettingRow, "uncommitted") is not None


def test_v1_database_opens_intact(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite3"
    make_v1_database(path)
    with Database.open(path) as db:
        lib = Library(db)
        [entry] = lib.entries()
        assert (entry.model_name, entry.version_name, entry.type) == ("Old Lora", "v1", "LORA")
        assert entry.trained_words == ("oldtrigger",)
        assert entry.sha256 == "ABC123"
        assert entry.verified  # its SHA256 is the one Civitai published for its file
        assert entry.nsfw_level == 12  # from the stored JSON: Open on Civitai picks civitai.red
        assert lib.version_json(8)["model"]["name"] == "Old Lora"
        assert lib.settings_values() == {"allow_nsfw": True}
        old = lib.local_file("/lib/Lora/old.safetensors")
        assert old is not None and old.identified_by == "hash"
        assert old.device is None and not old.offline  # v5: a scan records its device
    assert user_version(path) == SCHEMA_VERSION
    # Whatever the migrations did, the result has the schema a new database gets.
    fresh = tmp_path / "fresh.sqlite3"
    Database.open(fresh).close()
    assert schema_of(path) == schema_of(fresh)


def test_migration_steps_run_in_order_after_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite3"
    make_v1_database(path)
    ran: list[int] = []

    def add_column(conn):
        ran.append(2)
        conn.exec_driver_sql("ALTER TABLE local_files ADD COLUMN favourite BOOLEAN DEFAULT 0")

    def fill_column(conn):
        ran.append(3)
        conn.exec_driver_sql("UPDATE local_files SET favourite = 1 WHERE version_id = 8")

    steps = (Migration(2, "favourite", add_column), Migration(3, "fill", fill_column))
    with Database.open(path, migrations=steps) as db:
        assert db.schema_version == 3
        with db.session() as s:
            assert s.execute(text("SELECT path, favourite FROM local_files")).all() == [
                ("/lib/Lora/old.safetensors", 1)
            ]
    assert ran == [2, 3]
    assert user_version(path) == 3
    [backup] = (tmp_path / "backups").iterdir()  # no daily copy beside a fresh one
    assert backup.name.endswith("-before-v3.sqlite3")
    assert user_version(backup) == 1
    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT count(*) FROM local_files").fetchone() == (1,)
    conn.close()
    # Opening again at the same version migrates nothing.
    with Database.open(path, migrations=steps):
        pass
    assert ran == [2, 3]


def test_failed_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite3"
    make_v1_database(path)

    def half_done(conn):
        conn.exec_driver_sql("DELETE FROM local_files")
        conn.exec_driver_sql("ALTER TABLE nonexistent ADD COLUMN x INTEGER")

    with pytest.raises(MigrationFailed) as err:
        Database.open(path, migrations=(Migration(2, "broken", half_done),))
    [backup] = (tmp_path / "backups").iterdir()
    assert "v1 to v2" in str(err.value) and str(backup) in str(err.value)
    assert user_version(path) == 1
    with Database.open(path) as db:  # the current release still reads it
        assert len(Library(db).local_files()) == 1


def test_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite3"
    make_v1_database(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(NewerDatabase, match="newer civdesk"):
        Database.open(path)
    assert user_version(path) == 99


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite3"
    path.write_bytes(b"these are my notes, not a database\n" * 100)
    before = path.read_bytes()
    with pytest.raises(CorruptDatabase) as err:
        Database.open(path)
    assert isinstance(err.value, CivdeskError)
    assert "not a SQLite database" in str(err.value) and "\n" not in str(err.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["library.sqlite3"]


def test_a_damaged_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite3"
    make_v1_database(path)
    data = bytearray(path.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)  # keep the header, wreck every page
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptDatabase, match="damaged"):
        Database.open(path)
    assert path.read_bytes() == bytes(data)


def test_another_programs_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(CorruptDatabase, match="not a civdesk library"):
        Database.open(path)


def test_misnumbered_migrations_are_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected 2"):
        Database.open(tmp_path / "x.sqlite3", migrations=(Migration(3, "gap", lambda c: None),))
