"""``civdesk export`` and ``civdesk restore``: a library that moves with its owner.

``export`` writes the manifest (:mod:`civdesk.core.manifest`, specified in
docs/manifest.md); ``restore`` finds what is already on disk by hash, queues the rest on the
download queue and runs it here (an interrupted restore resumes when run again: its tasks
and ``.part`` files are kept), re-applies manual links, and lists what cannot come back.
Exit 0 when everything is back; 1 when something could not be restored (the list says
what and why) or a download failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from civdesk.cli.background import run_cancellable
from civdesk.cli.commands.common import Subparsers, json_flag, without_key_flag
from civdesk.cli.errors import EXIT_OK, Interrupted, UsageError
from civdesk.cli.output import plural, print_json, print_lines
from civdesk.core.civitai.errors import require_download_key
from civdesk.core.errors import CivdeskError

if TYPE_CHECKING:
    from civdesk.cli.app import Session
    from civdesk.core.restore import RestoreItem, RestoreOutcome


class RestoreIncomplete(CivdeskError):
    """Some files could not be restored (they are listed on stdout)."""


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    export = subparsers.add_parser(
        "export", parents=parents, help="write a manifest of the library (to restore it)",
        description="Write a manifest of the library: each file's place below its library "
        "folder, size, SHA256, Civitai ids and names, manual links and the type folders. "
        "`civdesk restore` brings the library back from it on another machine.")
    export.add_argument("file", metavar="FILE", help="the manifest to write (- for stdout)")
    json_flag(export)
    export.set_defaults(handler=run_export)

    restore = subparsers.add_parser(
        "restore", parents=parents, help="bring a library back from its manifest",
        description="Find the manifest's files already on disk by hash, download the rest "
        "from Civitai into their folders, re-apply manual links, and list what cannot come "
        "back (files Civitai never knew, models removed from Civitai).")
    restore.add_argument("file", metavar="FILE", help="the manifest (- for stdin)")
    restore.add_argument("--dest", metavar="DIR",
                         help="restore into DIR (default: this library's folders)")
    restore.add_argument("--dry-run", action="store_true",
                         help="say what would be done; download, link and change nothing")
    without_key_flag(restore)
    json_flag(restore)
    restore.set_defaults(handler=run_restore)


def run_export(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.manifest import build_manifest, write_manifest

    if not args.file.strip():
        raise UsageError("An empty file name was given to export")
    core = session.core()
    manifest = build_manifest(core.library, core.settings)
    if args.file == "-":
        write_manifest(manifest, sys.stdout)
        return EXIT_OK
    target = Path(args.file).expanduser().absolute()
    if target.is_dir():
        raise UsageError(f"{target} is a folder: name the manifest file to write")
    write_manifest(manifest, target)
    if session.json:
        print_json({"path": str(target), "files": len(manifest.files),
                    "roots": [r.path for r in manifest.roots]})
    else:
        print_lines([f"Wrote the manifest of {plural(len(manifest.files), 'file')} to {target}"])
    return EXIT_OK


def run_restore(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.downloads.queue import DownloadQueue
    from civdesk.core.manifest import read_manifest
    from civdesk.core.restore import restore_library

    manifest = read_manifest(sys.stdin.buffer if args.file == "-" else args.file)
    core = session.core()
    if not (args.dry_run or args.without_key):
        # As for `download`: asked before anything is fetched, not after a 401 per file.
        require_download_key(core.api_key())
    dest = None
    if args.dest is not None:
        if not args.dest.strip():
            raise UsageError("An empty folder name was given to --dest")
        dest = Path(args.dest).expanduser().resolve()
        if dest.exists() and not dest.is_dir():
            raise UsageError(f"Not a folder: {dest}")
    queue = None if args.dry_run else DownloadQueue.for_core(core)
    if queue is not None:
        session.tune(queue.client)
    # Versions are asked of every site mature content allows (a safe site answers 404
    # for a mature one).
    outcome = restore_library(core, manifest, dest, client=session.lookup_client(),
                              lookup=session.lookup_client(), queue=queue,
                              dry_run=args.dry_run)
    failed: list[RestoreItem] = []
    if queue is not None and outcome.queued:
        failed = _run_downloads(session, queue, outcome)
    if session.json:
        record = outcome.record()
        record["failed"] = [{"name": i.name, "path": i.path, "reason": i.reason} for i in failed]
        print_json(record)
    else:
        print_lines(_report(outcome, failed))
    if outcome.cannot or failed:
        raise RestoreIncomplete(
            f"{plural(len(outcome.cannot) + len(failed), 'file')} could not be restored "
            "(listed above)")
    return EXIT_OK


def _run_downloads(session: Session, queue: object, outcome: RestoreOutcome) -> list[RestoreItem]:
    """Run the restore's downloads here, one after the other; the ones that failed."""
    from civdesk.cli.commands.downloads import _ProgressRelay
    from civdesk.core.downloads.queue import DownloadQueue
    from civdesk.core.restore import RestoreItem

    assert isinstance(queue, DownloadQueue)
    failed: list[RestoreItem] = []
    for item in outcome.queued:
        task_id = item.task_id
        assert task_id is not None
        bar = session.progress()
        relay = _ProgressRelay(task_id, bar)
        queue.add_listener(relay)
        try:
            run_cancellable(lambda t=task_id: queue.run_next(t), queue.interrupt,
                            name="civdesk-restore")
        except KeyboardInterrupt:
            raise Interrupted("restore interrupted; the downloads stay queued with their "
                              "partial files: run the same command again to resume") from None
        except CivdeskError as exc:  # another civdesk is downloading it
            failed.append(RestoreItem(item.name, item.path, item.sha256, reason=str(exc)))
            continue
        finally:
            queue.remove_listener(relay)
            bar.finish()
        snapshot = queue.task(task_id)
        if snapshot.state != "completed":
            reason = snapshot.error or f"the download ended {snapshot.state}"
            failed.append(RestoreItem(item.name, item.path, item.sha256, reason=reason))
    return failed


def _report(outcome: RestoreOutcome, failed: list[RestoreItem]) -> list[str]:
    would = "would be " if outcome.dry_run else ""
    lines = [f"Restore into {', '.join(outcome.destinations)}"
             + (" (dry run: nothing changed)" if outcome.dry_run else "") + ":",
             f"  {plural(len(outcome.present), 'file')} already there",
             f"  {plural(len(outcome.queued), 'file')} {would}downloaded",
             f"  {plural(len(outcome.linked), 'manual link')} {would}re-applied"]
    if outcome.layout_applied:
        lines.append("  type folders set as in the manifest")
    lines += [f"  download failed: {i.name} ({i.path}): {i.reason}" for i in failed]
    if outcome.cannot:
        lines.append(f"Cannot come back ({len(outcome.cannot)}):")
        lines += [f"  {i.name} ({Path(i.path).name}): {i.reason}" for i in outcome.cannot]
    return lines
