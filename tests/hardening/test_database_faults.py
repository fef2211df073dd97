"""A healthy library database is never called damaged, and a damaged one never replaced.

Real conditions: a full disk (a tiny tmpfs), a read-only data folder (a tmpfs remounted
read-only, as root ignores permissions), a lock held by another process, garbage written
into the middle of the file, another program's SQLite file; then `civdesk db check` and
`civdesk db restore` on them.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from civdesk.core.library import CorruptDatabase, Database, ForeignDatabase
from civdesk.core.library.backups import Backups
from civdesk.core.library.health import (
    DatabaseDiskFull,
    DatabaseInUse,
    integrity_problems,
)
from civdesk.core.library.tables import SettingRow
from tests.hardening.helpers import (
    REPO,
    Cli,
    assert_one_line_error,
    cli_env,
    fill_settings,
    integrity,
    wreck_the_middle,
)

NO_SERVER = "http://127.0.0.1:9"  # these commands never talk to Civitai
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def cli(data: Path) -> Cli:
    return Cli(data, NO_SERVER)


def assert_not_called_damaged(stderr: str) -> None:
    assert "damaged" not in stderr and "move it aside" not in stderr, stderr


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                           capture_output=True, text=True, check=False)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def fill_disk(folder: Path) -> None:
    """Write until the file system says it is full (ENOSPC)."""
    block = b"\0" * (64 * 1024)
    with (folder / "filler").open("wb", buffering=0) as filler, contextlib.suppress(OSError):
        while True:
            filler.write(block)


def library_with_rows(data: Path, rows: int = 0) -> Path:
    """A civdesk library made by the CLI, with ``rows`` settings rows (many pages)."""
    result = cli(data).run("list")
    assert result.returncode == 0, result.stderr
    database = data / "library.sqlite3"
    fill_settings(database, rows)
    return database


# -- a full disk -----------------------------------------------------------------------------


@needs_root
def test_a_full_disk_is_said_as_such_and_the_library_stays_intact(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "data", "3m") as data:
        database = library_with_rows(data)
        before = database.read_bytes()
        fill_disk(data)
        for command in (["list"], ["config", "add-folder", str(tmp_path)]):
            result = cli(data).run(*command)
            assert_one_line_error(result, ["disk", "full", "free some space"])
            assert_not_called_damaged(result.stderr)
        (data / "filler").unlink()
        assert integrity(database) == "ok"
        assert database.read_bytes() == before
        assert cli(data).run("list").returncode == 0


@needs_root
def test_a_write_on_a_disk_that_fills_up_is_a_full_disk(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "data", "3m") as data:
        database = library_with_rows(data)
        with Database.open(database) as db:
            fill_disk(data)
            with pytest.raises(DatabaseDiskFull, match="is full"), db.session() as s:
                for i in range(2000):
                    s.add(SettingRow(key=f"big-{i}", value="y" * 4000))
        (data / "filler").unlink()
        assert integrity(database) == "ok"


@needs_root
def test_an_upgrade_on_a_full_disk_changes_nothing(tmp_path: Path) -> None:
    """The backup before a migration cannot be written: said so, the library stays as it was."""
    from tests.core.test_db import make_v1_database, user_version

    with tmpfs(tmp_path / "data", "3m") as data:
        database = data / "library.sqlite3"
        make_v1_database(database)
        with contextlib.closing(sqlite3.connect(database)) as conn:
            conn.executemany("INSERT INTO settings VALUES (?, ?)",
                             [(f"k{i}", '"' + "v" * 500 + '"') for i in range(2000)])
            conn.commit()
        fill_disk(data)
        filler = data / "filler"
        os.truncate(filler, filler.stat().st_size - 256 * 1024)  # room to open, not to copy
        with pytest.raises(DatabaseDiskFull, match="could not write a backup of it"):
            Database.open(database)
        (data / "filler").unlink()
        assert user_version(database) == 1 and integrity(database) == "ok"
        with contextlib.closing(sqlite3.connect(database)) as conn:
            assert conn.execute("SELECT count(*) FROM settings").fetchone() == (2001,)
        assert not list((data / "backups").glob("*.sqlite3"))  # no half backup either


# -- a read-only data folder -----------------------------------------------------------------


@contextlib.contextmanager
def read_only_data(data: Path) -> Iterator[Path]:
    """A data folder with a library that becomes read-only for real (also for root)."""
    if os.geteuid() != 0:
        library_with_rows(data)
        data.chmod(0o555)
        try:
            yield data
        finally:
            data.chmod(0o755)
        return
    with tmpfs(data, "16m"):
        library_with_rows(data)
        remount = subprocess.run(["mount", "-o", "remount,ro", str(data)],
                                 capture_output=True, text=True, check=False)
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
        yield data


def test_a_read_only_data_folder_is_said_as_such(tmp_path: Path) -> None:
    with read_only_data(tmp_path / "data") as data:
        before = (data / "library.sqlite3").read_bytes()
        result = cli(data).run("list")
        assert_one_line_error(result, ["may not write", "read-only"])
        assert_not_called_damaged(result.stderr)
        assert (data / "library.sqlite3").read_bytes() == before


# -- a lock held by another program ----------------------------------------------------------

HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode=" + sys.argv[2])
conn.execute("BEGIN EXCLUSIVE")
conn.execute("CREATE TABLE IF NOT EXISTS other_program (x)")
print("locked", flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def locked_by_another_process(database: Path, mode: str) -> Iterator[None]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(database), mode],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.communicate(timeout=10)


def test_a_database_locked_by_another_program_is_in_use_not_damaged(tmp_path: Path) -> None:
    database = library_with_rows(tmp_path / "data")
    before = database.read_bytes()
    with locked_by_another_process(database, "EXCLUSIVE"):
        with pytest.raises(DatabaseInUse, match="locked by another program") as err:
            Database.open(database, busy_timeout=0.3)
        assert "damaged" not in str(err.value)
        with pytest.raises(DatabaseInUse):  # `civdesk db check` says the same
            integrity_problems(database, timeout=0.3)
    assert database.read_bytes() == before  # the holder never committed


def test_a_write_blocked_by_another_programs_transaction_is_in_use(tmp_path: Path) -> None:
    database = library_with_rows(tmp_path / "data")
    with Database.open(database, busy_timeout=0.3) as db, \
            locked_by_another_process(database, "NORMAL"), \
            pytest.raises(DatabaseInUse, match="close the program"), db.session() as s:
        s.add(SettingRow(key="blocked", value=1))


# -- damage ----------------------------------------------------------------------------------


def test_garbage_in_the_middle_is_damage_then_restored_from_a_backup(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = library_with_rows(data, rows=3000)
    assert cli(data).run("list").returncode == 0  # an existing library: the day's backup
    [daily] = Backups(database).all()
    wreck_the_middle(database)
    wrecked = database.read_bytes()

    result = cli(data).run("config")
    assert_one_line_error(result, ["is damaged", "civdesk db restore"])
    assert database.read_bytes() == wrecked

    check = cli(data).run("db", "check")
    assert check.returncode == 1, check.stderr
    assert "is damaged" in check.stdout and "Traceback" not in check.stderr

    restore = cli(data).run("db", "restore", "newest")
    assert restore.returncode == 0, restore.stderr
    assert daily.name in restore.stdout
    [aside] = [b for b in Backups(database).all() if b.reason == "replaced"]
    assert aside.path.read_bytes() == wrecked  # the damaged file is kept, not deleted
    assert cli(data).run("db", "check").returncode == 0
    assert cli(data).run("config").returncode == 0


def test_db_check_says_ok_for_a_healthy_library(tmp_path: Path) -> None:
    data = tmp_path / "data"
    library_with_rows(data, rows=10)
    result = cli(data).run("db", "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok:")


# -- files that are not a civdesk library ----------------------------------------------------


@pytest.mark.parametrize("version", [0, 7])
def test_a_foreign_sqlite_file_stays_byte_for_byte(tmp_path: Path, version: int) -> None:
    data = tmp_path / "data"
    data.mkdir()
    database = data / "library.sqlite3"
    with contextlib.closing(sqlite3.connect(database)) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT)")
        conn.execute("INSERT INTO photos (path) VALUES ('holiday.jpg')")
        conn.execute(f"PRAGMA user_version = {version}")
        conn.commit()
    before = database.read_bytes()
    result = cli(data).run("list")
    assert_one_line_error(result, ["not a civdesk library"])
    assert database.read_bytes() == before  # not even switched to WAL
    assert sorted(p.name for p in data.iterdir()) == ["cache", "library.sqlite3", "logs"]


def test_a_sqlite_file_with_a_version_but_no_tables_is_foreign(tmp_path: Path) -> None:
    database = tmp_path / "library.sqlite3"
    with contextlib.closing(sqlite3.connect(database)) as conn:
        conn.execute("PRAGMA user_version = 3")
    before = database.read_bytes()
    with pytest.raises(ForeignDatabase):
        Database.open(database)
    assert database.read_bytes() == before


def test_an_empty_file_with_backups_is_not_replaced_by_a_new_library(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = library_with_rows(data)
    assert cli(data).run("list").returncode == 0  # takes the day's backup
    database.write_bytes(b"")  # a sync tool or a full disk truncated it
    result = cli(data).run("list")
    assert_one_line_error(result, ["empty file", "civdesk db restore"])
    assert database.stat().st_size == 0
    assert cli(data).run("db", "restore", "newest").returncode == 0
    assert integrity(database) == "ok" and cli(data).run("list").returncode == 0


def test_an_empty_file_beside_a_wal_is_not_replaced(tmp_path: Path) -> None:
    database = tmp_path / "library.sqlite3"
    database.touch()
    wal = tmp_path / "library.sqlite3-wal"
    wal.write_bytes(b"\x37\x7f\x06\x82" + b"\0" * 28)  # a WAL header: committed pages, maybe
    with pytest.raises(CorruptDatabase, match="empty file"):
        Database.open(database)
    assert database.stat().st_size == 0 and wal.stat().st_size == 32


def test_an_empty_file_without_history_becomes_a_new_library(tmp_path: Path) -> None:
    database = tmp_path / "library.sqlite3"
    database.touch()  # what sqlite3.connect() leaves when nothing was written
    with Database.open(database) as db:
        assert db.schema_version > 0
    assert integrity(database) == "ok"


def test_garbage_file_is_neither_opened_nor_restored_over_silently(tmp_path: Path) -> None:
    database = tmp_path / "library.sqlite3"
    database.write_bytes(os.urandom(8192))
    before = database.read_bytes()
    with pytest.raises(CorruptDatabase, match="not a SQLite database"):
        Database.open(database)
    assert integrity_problems(database) == ["not a SQLite database"]
    assert database.read_bytes() == before


# -- backups and restore ---------------------------------------------------------------------


def test_backups_roll_and_keep_what_a_restore_set_aside(tmp_path: Path) -> None:
    database = library_with_rows(tmp_path / "data")
    backups = Backups(database, keep=3)
    taken = [backups.take("daily") for _ in range(5)]
    backups.restore(backups.find("newest"))
    assert [b.path for b in backups.all() if b.reason == "daily"] == taken[::-1][:3]
    assert [b.reason for b in backups.all()].count("replaced") == 1
    for _ in range(3):
        backups.take("daily")
    assert [b.reason for b in backups.all()].count("replaced") == 1  # never pruned


def test_a_backup_a_day_old_brings_a_new_one_and_a_fresh_one_does_not(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = library_with_rows(data)
    backups = Backups(database)
    folder = backups.folder
    folder.mkdir()
    old = (datetime.now(UTC) - timedelta(days=1, minutes=1)).strftime("%Y%m%d-%H%M%S")
    (folder / f"library-{old}-daily.sqlite3").write_bytes(database.read_bytes())
    Database.open(database).close()
    assert [b.reason for b in backups.all()] == ["daily", "daily"]
    Database.open(database).close()
    assert len(backups.all()) == 2


HOLD_OPEN = """
import sys
from civdesk.core.library import Database
db = Database.open(sys.argv[1])
print("open", flush=True)
sys.stdin.read()
db.close()
"""


def test_restore_refuses_while_another_civdesk_has_the_library_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = library_with_rows(data)
    assert cli(data).run("list").returncode == 0
    before = database.read_bytes()
    other = subprocess.Popen([sys.executable, "-c", HOLD_OPEN, str(database)], env=cli_env(),
                             cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "open"
        result = cli(data).run("db", "restore", "newest")
        assert_one_line_error(result, ["in use by another civdesk", f"pid {other.pid}"])
        assert database.read_bytes() == before
        assert not [b for b in Backups(database).all() if b.reason == "replaced"]
    finally:
        other.communicate("", timeout=30)
    assert cli(data).run("db", "restore", "newest").returncode == 0


def test_restore_refuses_while_another_program_locks_the_library(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = library_with_rows(data)
    assert cli(data).run("list").returncode == 0
    with locked_by_another_process(database, "EXCLUSIVE"):
        result = cli(data).run("db", "restore", "newest")
        assert_one_line_error(result, ["locked by another program"])
        assert database.exists()
    assert not [b for b in Backups(database).all() if b.reason == "replaced"]


def test_db_restore_lists_the_backups(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = library_with_rows(data)
    assert "No backups yet" in cli(data).run("db", "restore").stdout
    assert cli(data).run("list").returncode == 0
    [backup] = Backups(database).all()
    listing = cli(data).run("db", "restore")
    assert listing.returncode == 0 and backup.name in listing.stdout
    missing = cli(data).run("db", "restore", "library-19990101-000000-daily.sqlite3")
    assert_one_line_error(missing, ["no backup called"])


def test_db_check_of_a_library_that_does_not_exist(tmp_path: Path) -> None:
    result = cli(tmp_path / "nothing").run("db", "check")
    assert_one_line_error(result, ["no library database"])
