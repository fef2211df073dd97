"""``civdesk download``: one file through the same persisted queue the window uses.

Going through :class:`DownloadQueue` keeps one code path for both front ends: the task is
in the download history, the ``.part`` path is recorded as soon as it exists, and the file
is verified, registered in the library and given its companion files by the queue's
post-download step. A ``civdesk download`` killed midway leaves its task and ``.part``
behind; running the same command again picks that task up and resumes with Range.

The queue runs on a worker thread (:func:`run_cancellable`): Ctrl+C interrupts the download
cleanly (task back to queued, ``.part`` kept) before exit 130.

Only one process downloads a file at a time. When another civdesk (the window, another
terminal) is downloading the same file, this command does not wait: it says which process
has it ("already being downloaded by another civdesk (pid N)") and exits 1 at once — the
other download goes on undisturbed, and running the command again after it finished finds
the verified file. Waiting silently on another window's download felt like a hang.
"""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from civdesk.cli.background import run_cancellable
from civdesk.cli.commands.common import (
    Subparsers,
    json_flag,
    parse_reference,
    record_id,
    without_key_flag,
)
from civdesk.cli.errors import EXIT_OK, KEY_HINT, Interrupted
from civdesk.cli.output import print_json, print_lines
from civdesk.core.civitai.errors import require_download_key
from civdesk.core.civitai.refs import resolve_version
from civdesk.core.civitai.sites import mature_hint
from civdesk.core.errors import CivdeskError
from civdesk.core.units import human_size

if TYPE_CHECKING:
    from civdesk.cli.app import Session
    from civdesk.cli.progress import ProgressBar
    from civdesk.core.civitai.client import CivitaiClient
    from civdesk.core.civitai.connections import Connections
    from civdesk.core.civitai.refs import ModelRef
    from civdesk.core.civitai.schema import ModelVersion
    from civdesk.core.civitai.sites import Sites
    from civdesk.core.context import Core
    from civdesk.core.downloads.queue import DownloadQueue, TaskSnapshot


class DownloadFailed(CivdeskError):
    """The queue recorded the task as failed; the message is the queue's one-line reason."""

    def __init__(self, message: str, kind: str | None) -> None:
        super().__init__(message)
        self.kind = kind


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    download = subparsers.add_parser(
        "download", parents=parents, help="download a model file from Civitai",
        description="Download a model version's file, verify its SHA256, put it in the "
        "folder for its type (or --dest) and add it to the library. An interrupted download "
        "resumes when the same command is run again. A file the library already holds is "
        "not downloaded again (unless --dest asks for a copy there).")
    download.add_argument(
        "ref", metavar="REF",
        help="a model version id, model:<id> (the latest version) or a Civitai model page "
        "link (with or without ?modelVersionId=)")
    download.add_argument("--file-id", type=record_id, metavar="ID",
                          help="which file of the version (default: its primary file)")
    download.add_argument("--dest", metavar="DIR",
                          help="download into DIR instead of the folder for the model type")
    without_key_flag(download)
    download.add_argument("--allow-flagged", action="store_true",
                          help="download the file even if Civitai's pickle or virus scan "
                          "flagged it as dangerous")
    json_flag(download)
    download.set_defaults(handler=run_download)


def run_download(session: Session, args: argparse.Namespace) -> int:
    early = _EarlyVersion.start(session, args.ref, without_key=args.without_key)
    # Both load SQLAlchemy: imported once the request is on its way.
    from civdesk.core.civitai.removals import Removals
    from civdesk.core.downloads.queue import DownloadQueue

    core = session.core()  # SQLAlchemy and the library load while the early request goes
    ref = parse_reference(args.ref, core.sites.both)
    if not args.without_key:
        # Before any request: asked up front, not after a 401 halfway through (issue 16).
        require_download_key(core.api_key())
    asked = early.adopt(core) if early is not None else None
    client = asked.client if asked is not None else session.client()
    # Resolved up front: a removed model or a bad --file-id fails before anything is queued.
    removals = Removals(core.library, core.sites, core.api_key())
    with removals.watching(ref.version_id, client.base_url), mature_hint(core.sites):
        version = asked.result() if asked is not None else resolve_version(client, ref)
    dest = Path(args.dest).expanduser().resolve() if args.dest else None
    queue = DownloadQueue.for_core(core)
    session.tune(queue.client)
    task_id = _task_for(queue, core, version, args.file_id, dest, args.allow_flagged)
    queue.use_version(version)  # asked a moment ago: not again before the file
    bar = session.progress()
    queue.add_listener(_ProgressRelay(task_id, bar))
    interrupted = False
    try:
        # This task only: the queue may hold other tasks (the window's) not ours to run.
        run_cancellable(lambda: queue.run_next(task_id), queue.interrupt,
                        name="civdesk-download")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.finish()
    snapshot = queue.task(task_id)
    if interrupted and snapshot.state != "completed":  # else it ended as Ctrl+C came: done
        raise Interrupted("download interrupted; the partial file is kept: run the same "
                          "command again to resume")
    if snapshot.state != "completed":
        raise _failure(snapshot)
    registered = core.library.local_file(snapshot.dest_path) if snapshot.dest_path else None
    record = {"path": os.path.abspath(snapshot.dest_path) if snapshot.dest_path else None,
              "sha256": registered.sha256 if registered else snapshot.expected_sha256,
              "version_id": snapshot.version_id, "state": snapshot.state,
              "already_present": snapshot.already_present,
              "checked": snapshot.checked,
              "verified": registered.verified if registered else snapshot.checked == "sha256"}
    if session.json:
        print_json(record)
        return EXIT_OK
    name = " ".join(filter(None, (snapshot.model_name, snapshot.version_name)))
    name = name or f"version {snapshot.version_id}"
    if snapshot.already_present:
        again = "" if dest else " (--dest DIR downloads a copy elsewhere)"
        print_lines([f"{name} is already in the library, nothing downloaded: "
                     f"{snapshot.dest_path}{again}"])
        return EXIT_OK
    print_lines([f"Downloaded {name} ({human_size(snapshot.bytes_total)}, "
                 f"{_what_was_checked(snapshot.checked)}) to {snapshot.dest_path}"])
    return EXIT_OK


class _EarlyVersion:
    """The version asked of Civitai on a thread while the library opens.

    Importing SQLAlchemy and opening the library take longer than the request: asked first,
    the answer is usually there by the time the library is. Which site to ask and with
    which key come from the same places as always (the settings read without SQLAlchemy,
    :mod:`civdesk.core.settings_peek`); :meth:`adopt` keeps the answer only when the opened
    library agrees, else the version is asked again as before. Nothing is asked without a
    key unless ``--without-key`` says so (the usual path then reports the missing key).
    """

    def __init__(self, connections: Connections, client: CivitaiClient, ref: ModelRef,
                 sites: Sites, key: str | None) -> None:
        self.connections = connections
        self.client = client
        self.sites = sites
        self.key = key
        self._ref = ref
        self._outcome: ModelVersion | BaseException | None = None
        self._thread = threading.Thread(target=self._ask, name="civdesk-early-request",
                                        daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, session: Session, ref_text: str, *, without_key: bool
              ) -> _EarlyVersion | None:
        """Send the request, or None when the usual order must decide (no key, a reference
        or setting it cannot read: the usual path reports those)."""
        from civdesk.core.civitai.refs import BadReference, parse_ref
        from civdesk.core.civitai.sites import configured_sites
        from civdesk.core.secret_text import clean_api_key
        from civdesk.core.secrets import ApiKeyStore
        from civdesk.core.settings import Settings
        from civdesk.core.settings_peek import stored_settings
        from civdesk.paths import app_paths

        try:
            paths = app_paths(session.options.data_dir)
            stored = stored_settings(paths.database)
            if stored is None:
                return None
            sites = configured_sites(Settings.from_values(stored), *session.site_options())
            ref = parse_ref(ref_text, sites.both)
            key = (clean_api_key(session.options.api_key or None, "")
                   or ApiKeyStore(paths.config).get())
        except (CivdeskError, BadReference, OSError):
            return None
        if not key and not without_key:
            return None
        from civdesk.core.civitai.connections import Connections

        connections = Connections()
        client = session.tune(connections.client(sites.content, key))
        return cls(connections, client, ref, sites, key)

    def _ask(self) -> None:
        try:
            self._outcome = resolve_version(self.client, self._ref)
        except BaseException as exc:  # raised where the answer is read
            self._outcome = exc

    def adopt(self, core: Core) -> _EarlyVersion | None:
        """This request when it asked what the opened library would have asked (then the
        core's clients share its connections); None when not, its answer dropped."""
        if core.sites != self.sites or core.api_key() != self.key:
            return None
        core.adopt_connections(self.connections)
        return self

    def result(self) -> ModelVersion:
        self._thread.join()
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        assert self._outcome is not None
        return self._outcome


def _what_was_checked(checked: str | None) -> str:
    """How the file was checked, in words: never "verified" without a SHA256 to match."""
    if checked == "sha256":
        return "SHA256 verified"
    if checked == "size":
        return ("only its size checked: Civitai publishes no SHA256 for this file, so the "
                "library marks it unverified")
    return ("not checked: Civitai publishes no SHA256 or size for this file, so the library "
            "marks it unverified")


def _task_for(queue: DownloadQueue, core: Core, version: ModelVersion, file_id: int | None,
              dest: Path | None, allow_flagged: bool = False) -> int:
    """The task to run: an unfinished one for the same file and folder, else a new one.

    Reusing the task of a killed or failed run is what makes it resume: the task knows
    its ``.part``. The task is moved to the front so that this command runs it next.
    A matching task another process is downloading (a stale one was already put back in
    line when the queue opened) raises :class:`DownloadingElsewhere`.
    """
    from civdesk.core.downloads.queue import DownloadingElsewhere, folder_type

    wanted = version.file_by_id(file_id) if file_id is not None else version.primary_file
    wanted_file = file_id if file_id is not None else (wanted.id if wanted else None)
    model_type = version.model.type if version.model else None
    folders = {str(dest)} if dest else {
        str(core.folder_for_type(folder_type(model_type, wanted.type if wanted else None)))}
    for task in queue.tasks():
        same = (task.version_id == version.id
                and task.file_id in (wanted_file, None)
                and (task.dest_dir in folders or (dest is None and task.dest_dir is None)))
        if same and task.state == "downloading":
            raise DownloadingElsewhere.of_task(task, "wait for it to finish, or stop it there")
        if same and task.state in ("queued", "failed"):
            if task.state == "failed":
                queue.retry(task.id, allow_flagged=allow_flagged or None)
            elif allow_flagged and not task.allow_flagged:
                queue.allow_flagged_file(task.id)
            queue.move(task.id, 0)
            return task.id
    task_id = queue.add(version.id, file_id, dest, version=version, allow_flagged=allow_flagged)
    queue.move(task_id, 0)
    return task_id


def _failure(snapshot: TaskSnapshot) -> CivdeskError:
    message = snapshot.error or f"The download ended {snapshot.state}"
    key_trouble = snapshot.error_kind in ("auth", "key_refused")
    if key_trouble and "disabled downloads" not in message.lower():
        message = f"{message} ({KEY_HINT})"
    elif snapshot.error_kind == "flagged":
        message = (f"{message}. Only if you trust its creator: run the same command with "
                   "--allow-flagged")
    elif snapshot.error_kind == "rate_limited" and (snapshot.retry_after or 0) >= 1:
        message = f"{message} (Civitai asked to wait {snapshot.retry_after:.0f} s)"
    return DownloadFailed(message, snapshot.error_kind)


class _ProgressRelay:
    """Queue events of one task → the terminal bar (and a note while rate limited)."""

    def __init__(self, task_id: int, bar: ProgressBar) -> None:
        self.task_id = task_id
        self.bar = bar
        self._noted: str | None = None

    def __call__(self, event: str, payload: Any) -> None:
        if getattr(payload, "id", None) != self.task_id:
            return
        if event == "progress":
            self.bar.update(payload.bytes_done, payload.bytes_total, payload.file_name or "")
        elif (event == "changed" and payload.error_kind == "rate_limited"
              and payload.error and payload.error != self._noted):
            self._noted = payload.error
            self.bar.note(f"civdesk: {payload.error}")
