"""``civdesk db``: check the library database, list its backups and restore one.

These work on the file itself and never open it as a library: a damaged or locked database
is exactly when they are needed. ``check`` runs SQLite's integrity check (exit 0 when it is
intact, 1 when not); ``restore`` without a name lists the backups, with one (or ``newest``)
puts it in place after setting the current file aside in ``backups/``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from civdesk.cli.commands.common import Subparsers, json_flag
from civdesk.cli.errors import EXIT_FAILURE, EXIT_OK
from civdesk.cli.output import print_json, print_lines, table
from civdesk.core.units import human_size
from civdesk.paths import app_paths

if TYPE_CHECKING:
    from pathlib import Path

    from civdesk.cli.app import Session
    from civdesk.core.library.backups import Backups

NEWEST = "newest"


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    db = subparsers.add_parser(
        "db", parents=parents, help="check the library database; restore a backup",
        description="The library database (library.sqlite3 in the data folder) and its "
        "backups, taken before each upgrade and once a day into backups/ (5 are kept).")
    actions = db.add_subparsers(dest="action", metavar="ACTION", parser_class=type(db),
                                required=True)

    check = actions.add_parser(
        "check", parents=parents, help="run SQLite's integrity check on the database",
        description="Check the library database for damage: prints what is wrong, exit "
        "code 0 when it is intact and 1 when not.")
    json_flag(check)
    check.set_defaults(handler=run_check)

    restore = actions.add_parser(
        "restore", parents=parents, help="list the backups, or restore one",
        description="Without BACKUP: list the backups. With one (or `newest`): put it in "
        "place of the database; the current file is kept in backups/ as …-replaced. Quit "
        "every civdesk using the library first.")
    restore.add_argument("backup", nargs="?", metavar="BACKUP",
                         help=f"a backup's name as listed, or {NEWEST}")
    json_flag(restore)
    restore.set_defaults(handler=run_restore)


def _database(session: Session) -> Path:
    return app_paths(session.options.data_dir).database


def run_check(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.library.health import DatabaseProblem, integrity_problems

    path = _database(session)
    if not path.exists():
        raise DatabaseProblem(f"There is no library database at {path} yet")
    problems = integrity_problems(path)
    if session.json:
        print_json({"path": path, "ok": not problems, "problems": problems})
    elif problems:
        print_lines([f"The library database {path} is damaged:",
                     *(f"  {p}" for p in problems),
                     "`civdesk db restore` lists the backups; `civdesk db restore newest` "
                     "brings back the newest."])
    else:
        print_lines([f"ok: the library database {path} is intact"])
    return EXIT_FAILURE if problems else EXIT_OK


def run_restore(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.library.backups import Backups

    backups = Backups(_database(session))
    if args.backup is None:
        return _list(session, backups)
    chosen = backups.find(args.backup)
    aside = backups.restore(chosen)
    replaced = None if aside == backups.database else aside
    if session.json:
        print_json({"restored": chosen.path, "database": backups.database,
                    "replaced": replaced})
    else:
        kept = f"; the previous file is kept as {replaced}" if replaced else ""
        print_lines([f"Restored the library database from {chosen.name}{kept}."])
    return EXIT_OK


def _list(session: Session, backups: Backups) -> int:
    found = backups.all()
    if session.json:
        print_json([{"name": b.name, "path": b.path, "taken": b.taken.isoformat(),
                     "reason": b.reason, "size": b.path.stat().st_size} for b in found])
        return EXIT_OK
    if not found:
        print_lines([f"No backups yet in {backups.folder}; civdesk takes one before each "
                     "upgrade and once a day."])
        return EXIT_OK
    rows = [(b.name, b.taken.astimezone().strftime("%Y-%m-%d %H:%M"),
             human_size(b.path.stat().st_size), b.reason) for b in found]
    print_lines([*table(rows, ("BACKUP", "TAKEN", "SIZE", "WHY")),
                 f"`civdesk db restore {NEWEST}` or `civdesk db restore BACKUP` puts one back."])
    return EXIT_OK
