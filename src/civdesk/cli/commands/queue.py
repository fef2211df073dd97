"""``civdesk queue``: the download list the window's dock shows, from a terminal.

The same persisted queue: what waits (a ``civdesk download`` stopped with Ctrl+C, which the
window would resume on its next start), what runs in another civdesk, and the history
with each failure's reason. ``cancel`` drops a waiting download and its ``.part``;
``clear`` forgets the finished ones (their files stay where they are).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from civdesk.cli.commands.common import Subparsers, json_flag, record_id
from civdesk.cli.errors import EXIT_OK
from civdesk.cli.output import plural, print_json, print_lines, table
from civdesk.core.units import human_size

if TYPE_CHECKING:
    from civdesk.cli.app import Session
    from civdesk.core.downloads.queue import TaskSnapshot


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    queue = subparsers.add_parser(
        "queue", parents=parents, help="list, cancel or clear downloads",
        description="Without an action: the download list (waiting, running, and the "
        "history with why a download failed), the one the window shows.")
    json_flag(queue)
    queue.set_defaults(handler=run_list)
    actions = queue.add_subparsers(dest="action", metavar="ACTION", parser_class=type(queue))

    cancel = actions.add_parser(
        "cancel", parents=parents, help="drop a download that has not finished",
        description="Cancel a waiting download (its partial file is deleted). One that "
        "another civdesk is downloading is cancelled there.")
    cancel.add_argument("task_id", type=record_id, metavar="ID", help="its number in the list")
    cancel.set_defaults(handler=run_cancel)

    clear = actions.add_parser(
        "clear", parents=parents, help="forget the finished downloads",
        description="Forget every completed, failed and cancelled download; the files stay.")
    clear.set_defaults(handler=run_clear)


def run_list(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.downloads.queue import DownloadQueue

    queue = DownloadQueue.for_core(session.core())
    tasks = queue.tasks()
    if session.json:
        print_json([task_record(t) for t in tasks])
        return EXIT_OK
    if not tasks:
        print_lines(["No downloads: `civdesk download REF` starts one."])
        return EXIT_OK
    rows = [(f"#{t.id}", t.state, _progress(t), _name(t), t.error or t.dest_path or "")
            for t in tasks]
    lines = table(rows, ("ID", "STATE", "DONE", "FILE", "WHERE / WHY"))
    if queue.paused and any(t.state == "queued" for t in tasks):
        lines.append("The window's queue is paused (Resume all); `civdesk download REF` "
                     "still downloads one file now.")
    print_lines(lines)
    return EXIT_OK


def run_cancel(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.downloads.queue import DownloadQueue

    queue = DownloadQueue.for_core(session.core())
    task = queue.task(args.task_id)
    queue.cancel(task.id)
    print_lines([f"Cancelled download #{task.id} ({_name(task)})."])
    return EXIT_OK


def run_clear(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.downloads.queue import DownloadQueue

    removed = DownloadQueue.for_core(session.core()).clear_finished()
    print_lines([f"Forgot {plural(removed, 'finished download')}; the files stay on disk."])
    return EXIT_OK


def task_record(t: TaskSnapshot) -> dict[str, Any]:
    return {
        "id": t.id,
        "state": t.state,
        "version_id": t.version_id,
        "file_id": t.file_id,
        "model_name": t.model_name,
        "version_name": t.version_name,
        "file_name": t.file_name,
        "bytes_done": t.bytes_done,
        "bytes_total": t.bytes_total,
        "path": t.dest_path,
        "error": t.error,
        "error_kind": t.error_kind,
        "already_present": t.already_present,
    }


def _name(t: TaskSnapshot) -> str:
    what = " ".join(filter(None, (t.model_name, t.version_name))) or f"version {t.version_id}"
    return f"{what}: {t.file_name}" if t.file_name else what


def _progress(t: TaskSnapshot) -> str:
    if t.bytes_total:
        return f"{human_size(t.bytes_done)} of {human_size(t.bytes_total)}"
    return human_size(t.bytes_done) if t.bytes_done else ""
