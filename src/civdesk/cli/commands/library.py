"""Commands about the files on disk: ``scan``, ``list``, ``link`` and ``duplicates``."""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from civdesk.cli.background import run_cancellable
from civdesk.cli.commands.common import (
    Subparsers,
    existing_folder,
    json_flag,
    model_type,
    parse_reference,
)
from civdesk.cli.commands.config import layout_note
from civdesk.cli.errors import EXIT_OK, Interrupted, UsageError
from civdesk.cli.output import (
    plural,
    print_json,
    print_lines,
    print_warning,
    shell_quote,
    table,
)
from civdesk.core.civitai.refs import resolve_version
from civdesk.core.civitai.sites import mature_hint
from civdesk.core.errors import CivdeskError
from civdesk.core.units import human_size

if TYPE_CHECKING:
    from civdesk.cli.app import Session
    from civdesk.core.context import Core
    from civdesk.core.library import LibraryEntry
    from civdesk.core.scanner import ScanProgress, ScanSummary

UNKNOWN = "Unknown"
OFFLINE_MARK = "  [offline]"  # after the path in `list`: kept while its drive is away
REMOVED_MARK = "  [removed from Civitai]"  # after the path: its model or version is gone there


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    scan = subparsers.add_parser(
        "scan", parents=parents, help="find, hash and identify the model files in folders",
        description="Scan folders for model files, identify them on Civitai by their SHA256, "
        "write companion files (.civitai.info, preview) and update the library. Folders "
        "given here are remembered as library folders; without any, the remembered ones "
        "are scanned.")
    scan.add_argument("paths", nargs="*", metavar="PATH", help="a folder to scan")
    json_flag(scan)
    scan.set_defaults(handler=run_scan)

    listing = subparsers.add_parser(
        "list", parents=parents, help="list the model files in the library",
        description="List the files in the library with their Civitai model and version.")
    listing.add_argument("--type", type=library_type, metavar="TYPE",
                         help="only this model type (LORA, Checkpoint, …, or Unknown)")
    listing.add_argument("--removed", action="store_true",
                         help="only files whose model or version Civitai removed")
    json_flag(listing)
    listing.set_defaults(handler=run_list)

    link = subparsers.add_parser(
        "link", parents=parents, help="tie a file Civitai does not know by hash to a version",
        description="Tell civdesk which Civitai model version a file is, when Civitai does "
        "not recognise its hash (a converted or pruned copy, for instance).")
    link.add_argument("path", metavar="PATH", help="the model file")
    link.add_argument("ref", metavar="REF",
                      help="a version id, model:<id> (its latest version) or a Civitai link")
    link.add_argument("--force", action="store_true",
                      help="link it even if Civitai knows the file as another version")
    json_flag(link)
    link.set_defaults(handler=run_link)

    duplicates = subparsers.add_parser(
        "duplicates", parents=parents, help="list files that are byte-for-byte copies",
        description="List groups of library files with the same SHA256.")
    json_flag(duplicates)
    duplicates.set_defaults(handler=run_duplicates)


def library_type(text: str) -> str:
    if text.strip().lower() == UNKNOWN.lower():
        return UNKNOWN
    return model_type(text)


# ------------------------------------------------------------------------------- scan


def run_scan(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.scanner import Scanner

    core = session.core()
    folders, note = _folders_to_scan(core, args.paths)
    bar = session.progress()

    def on_progress(p: ScanProgress) -> None:
        if p.bytes_total:
            # The bytes of the new and changed files: so many of those files read.
            read = f"{p.files_hashed}/{p.files_to_hash or p.files_found}"
            label = f"{read} files read {Path(p.current_path or '').name}"
            bar.update(p.bytes_done, p.bytes_total, label)
        else:
            bar.count(p.files_found, None, f"files found ({p.phase})")

    scanner = Scanner(core.library, session.lookup_client(), core.settings)
    cancel = threading.Event()
    try:
        summary = run_cancellable(
            lambda: scanner.scan([str(f) for f in folders], progress=on_progress, cancel=cancel),
            cancel.set, name="civdesk-scan")
    except KeyboardInterrupt:
        raise Interrupted("scan interrupted; what it found so far is saved, and the next "
                          "scan skips the files already hashed") from None
    finally:
        bar.finish()
    if session.json:  # the files of the folders scanned: read only when they are printed
        entries = [e for e in core.library.entries() if _under_any(e.path, folders)]
        print_json(scan_record(summary, entries))
    else:
        print_lines([*scan_summary_lines(summary, folders), *note])
    # The scan itself succeeded (exit 0); what it could not do is said on stderr, so a
    # script reading stdout still gets clean output.
    for problem in summary.errors:  # a missing or empty folder among them, said once
        print_warning(problem)
    return EXIT_OK


def _folders_to_scan(core: Core, given: list[str]) -> tuple[list[Path], list[str]]:
    """The folders named on the command line (remembered from now on) or the remembered
    ones, and what to tell about the type folders (a ComfyUI models folder is followed)."""
    if given:
        folders = list(dict.fromkeys(_folder_to_scan(core, p) for p in given))
        note: list[str] = []
        # Without a download folder set, downloads go to the first library folder, which
        # a parent folder given now replaces: say so (the first folder ever is expected).
        had_folders = bool(core.settings.library_folders)
        downloads_before = core.settings.effective_download_root
        if [core.settings.add_library_folder(f) for f in folders].count(True):
            note = layout_note(core.settings, core.settings.adopt_layout_of())
            core.save_settings()
            downloads = core.settings.effective_download_root
            if had_folders and downloads != downloads_before:
                note.append(f"Downloads now go to {downloads}, the first library folder "
                            "(`civdesk config set-download-root DIR` chooses another).")
        return folders, note
    from civdesk.core.scanner import Scanner

    folders = Scanner(core.library, None, core.settings).default_folders()
    if not folders:
        raise UsageError("No library folders yet: name one, e.g. `civdesk scan ~/models`")
    return [Path(p) for p in folders], []


def _folder_to_scan(core: Core, text: str) -> Path:
    """A folder argument of ``scan``; a file gets a usage error that says what to scan."""
    if not text.strip():
        # Path("") is the current folder: an unset $MODELS must not make it a library folder.
        raise UsageError("An empty folder name was given to scan")
    path = Path(text).expanduser().resolve()
    if not path.is_file():
        return existing_folder(text)
    library = [Path(f) for f in core.settings.library_folders]
    if _under_any(str(path), library):
        raise UsageError(f"{path} is a file, and scan takes folders; it is in a library "
                         "folder, so `civdesk scan` finds it (files already hashed are "
                         "not read again)")
    raise UsageError(f"{path} is a file, and scan takes folders: `civdesk scan "
                     f"{shell_quote(str(path.parent))}` adds its folder to the library")


def _under_any(path: str, folders: list[Path]) -> bool:
    # Strings, not Path.parents: this runs once per file of the library (100,000 files:
    # seconds with Path objects).
    return any(path == str(f) or path.startswith(os.path.join(str(f), "")) for f in folders)


def scan_record(summary: ScanSummary, entries: list[LibraryEntry]) -> dict[str, Any]:
    return {
        "found": summary.found,
        "identified": summary.identified,
        "unknown": summary.unknown,
        "removed": summary.removed,
        "moved": summary.moved,
        "duplicates": summary.duplicates,
        "errors": list(summary.errors),
        "missing_roots": list(summary.missing_roots),
        "offline": summary.offline,
        "models": [
            {
                "path": e.path,
                "sha256": e.sha256,
                "model_id": e.model_id,
                "version_id": e.version_id,
                # Unknown files keep their file name, so the list still says what they are.
                "name": e.model_name if e.identified else e.file_name,
                "type": e.type if e.identified else None,
                "offline": e.offline,
            }
            for e in entries
        ],
    }


def scan_summary_lines(summary: ScanSummary, folders: list[Path]) -> list[str]:
    where = str(folders[0]) if len(folders) == 1 else plural(len(folders), "folder")
    lines = [
        f"Scanned {where}: {plural(summary.found, 'model file')}, "
        f"{summary.identified} identified on Civitai, {summary.unknown} unknown."
    ]
    changes = []
    if summary.moved:
        changes.append(f"{plural(summary.moved, 'file')} moved")
    if summary.removed:
        changes.append(f"{plural(summary.removed, 'file')} gone from disk and forgotten")
    if summary.offline:
        changes.append(f"{plural(summary.offline, 'file')} kept as offline (drive or folder "
                       "not there)")
    if summary.duplicates:
        changes.append(f"{plural(summary.duplicates, 'duplicate')} (see `civdesk duplicates`)")
    if changes:
        lines.append("; ".join(changes).capitalize() + ".")
    if summary.unknown:
        lines.append("Tie an unknown file to its Civitai version with: civdesk link PATH REF")
    return lines


# ------------------------------------------------------------------------------- list


def run_list(session: Session, args: argparse.Namespace) -> int:
    entries = session.core().library.entries(model_type=args.type)
    if args.removed:
        entries = [e for e in entries if e.removed]
    if session.json:
        print_json([entry_record(e) for e in entries])
        return EXIT_OK
    if not entries:
        print_lines(["No file in the library was removed from Civitai." if args.removed
                     else "The library is empty: add a folder with `civdesk scan PATH`."
                     if args.type is None else f"No {args.type} files in the library."])
        return EXIT_OK
    rows = [(e.type, e.model_name or e.file_name, e.version_name, e.base_model,
             human_size(e.size), "yes" if e.verified else "no",
             f"{e.path}{OFFLINE_MARK if e.offline else ''}{REMOVED_MARK if e.removed else ''}")
            for e in entries]
    lines = table(rows, ("TYPE", "MODEL", "VERSION", "BASE", "SIZE", "VERIFIED", "PATH"))
    offline = sum(e.offline for e in entries)
    if offline:
        lines.append(f"{plural(offline, 'file')} offline: the drive or folder is not there "
                     "now; kept, and back with the next scan that finds them.")
    removed = sum(e.removed for e in entries)
    if removed:
        lines.append(f"{plural(removed, 'file')} removed from Civitai: the library keeps "
                     "their metadata, previews and trigger words; they get no updates.")
    print_lines(lines)
    return EXIT_OK


def entry_record(e: LibraryEntry) -> dict[str, Any]:
    return {
        "path": e.path,
        "sha256": e.sha256,
        "model_id": e.model_id,
        "version_id": e.version_id,
        "model_name": e.model_name,
        "version_name": e.version_name,
        "type": e.type if e.identified else None,
        "base_model": e.base_model,
        "size": e.size,
        "preview": e.preview,
        "info": e.info,
        "offline": e.offline,
        # Its bytes matched the SHA256 Civitai publishes for it.
        "verified": e.verified,
        # Civitai archived or took down its model, or unpublished its version.
        "removed": e.removed,
        "removed_how": e.removed_how,
        "removed_at": e.removed_at.isoformat() if e.removed_at else None,
        # What the user wrote in other tools (A1111, Lora Manager, Stability Matrix):
        # title, notes, activation_text, preferred_weight, tags, favorite... when present.
        "user": dict(e.user),
    }


# ------------------------------------------------------------------------------- link


def run_link(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.scanner import LinkConflict, Scanner
    from civdesk.core.sidecars import MODEL_EXTENSIONS, is_model_file_name

    # Absolute, not resolved: a file in a linked folder keeps the path the library knows.
    path = Path(os.path.abspath(Path(args.path).expanduser()))
    if path.is_dir():
        raise UsageError(f"{path} is a folder: link takes one model file")
    if not path.is_file():
        raise UsageError(f"No such file: {path}")
    if not is_model_file_name(path.name):
        raise UsageError(f"{path.name} is not a model file (link takes "
                         f"{', '.join(sorted(MODEL_EXTENSIONS))})")
    core = session.core()
    client = session.client()
    ref = parse_reference(args.ref, core.sites.both)
    with mature_hint(core.sites):
        version = resolve_version(client, ref)
    try:
        linked = Scanner(core.library, client, core.settings).link(
            path, version, force=args.force)
    except LinkConflict as conflict:
        raise CivdeskError(f"{conflict} (a scan identifies it by itself; to link it anyway: "
                           "--force)") from None
    entry = next((e for e in core.library.entries() if e.path == linked.path), None)
    if session.json:
        print_json(entry_record(entry) if entry else {"path": linked.path})
        return EXIT_OK
    name = f"{entry.model_name} {entry.version_name}" if entry else f"version {version.id}"
    print_lines([f"Linked {linked.path} to {name} (version {version.id})."])
    return EXIT_OK


# -------------------------------------------------------------------------- duplicates


def run_duplicates(session: Session, args: argparse.Namespace) -> int:
    groups = session.core().library.duplicates()
    if session.json:
        print_json([
            {"sha256": group[0].sha256, "size": group[0].size, "paths": [f.path for f in group]}
            for group in groups
        ])
        return EXIT_OK
    if not groups:
        print_lines(["No duplicate files in the library."])
        return EXIT_OK
    lines: list[str] = []
    wasted = 0
    for group in groups:
        first = group[0]
        lines.append(f"{(first.sha256 or '')[:12]}…  {human_size(first.size)}  "
                     f"{len(group)} copies")
        lines.extend(f"  {f.path}" for f in group)
        wasted += first.size * (len(group) - 1)
    lines.append(f"{plural(len(groups), 'group')}; removing the extra copies would free "
                 f"{human_size(wasted)}.")
    print_lines(lines)
    return EXIT_OK
