"""``civdesk config``: show the settings, store the API key, add or remove a library
folder, choose the download folder, name the type folders as a web UI does."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from civdesk.cli.commands.common import Subparsers, existing_folder, json_flag
from civdesk.cli.errors import EXIT_OK, UsageError
from civdesk.cli.output import plural, print_json, print_lines, table
from civdesk.core.disks import HASHING_CHOICES
from civdesk.core.errors import CivdeskError
from civdesk.core.settings import FOLDER_LAYOUTS, LAYOUT_NAMES

if TYPE_CHECKING:
    from civdesk.cli.app import Session
    from civdesk.core.context import Core
    from civdesk.core.settings import Settings


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    config = subparsers.add_parser(
        "config", parents=parents, help="show the settings; store the API key; set folders",
        description="Without an action: show where civdesk keeps its data and what is set.")
    json_flag(config)
    config.set_defaults(handler=run_show)
    actions = config.add_subparsers(dest="action", metavar="ACTION", parser_class=type(config))

    set_key = actions.add_parser(
        "set-key", parents=parents, help="store the Civitai API key (read from stdin)",
        description="Read the API key from the terminal without echoing it, or from stdin "
        "when it is piped in (`pass show civitai | civdesk config set-key`). It goes into "
        "the system keychain when there is one, else into a file only you can read.")
    _action_json(set_key)
    set_key.set_defaults(handler=run_set_key)

    clear_key = actions.add_parser("clear-key", parents=parents,
                                   help="forget the stored API key")
    _action_json(clear_key)
    clear_key.set_defaults(handler=run_clear_key)

    add_folder = actions.add_parser(
        "add-folder", parents=parents, help="remember a folder as a library folder",
        description="Add a folder to the library folders that `civdesk scan` scans.")
    add_folder.add_argument("path", metavar="PATH")
    _action_json(add_folder)
    add_folder.set_defaults(handler=run_add_folder)

    remove_folder = actions.add_parser(
        "remove-folder", parents=parents, help="stop scanning a library folder",
        description="Remove a folder from the library folders. Its files stay on disk; the "
        "library forgets them (unless another folder it scans holds them).")
    remove_folder.add_argument("path", metavar="PATH")
    _action_json(remove_folder)
    remove_folder.set_defaults(handler=run_remove_folder)

    download_root = actions.add_parser(
        "set-download-root", parents=parents, help="choose the folder downloads go to",
        description="Downloads go to a sub-folder per model type of this folder (see "
        "set-layout). Without one set, they go to the first library folder, else "
        "~/civdesk-models.")
    download_root.add_argument("path", metavar="PATH")
    _action_json(download_root)
    download_root.set_defaults(handler=run_set_download_root)

    find_folders = actions.add_parser(
        "find-folders", parents=parents, help="list the usual web UI model folders here",
        description="Look where AUTOMATIC1111, Forge, SD.Next, ComfyUI and Stability Matrix "
        "keep their models by default, and list the folders that exist; --add adds them to "
        "the library folders.")
    find_folders.add_argument("--add", action="store_true",
                              help="add the folders found to the library folders")
    _action_json(find_folders, 'the folders found and added ({"found": [...], "added": [...]})')
    find_folders.set_defaults(handler=run_find_folders)

    set_nsfw = actions.add_parser(
        "set-nsfw", parents=parents, help="allow or hide mature content",
        description="on: search, model pages and identification use the site with all "
        "content (civitai.red, --mature-api-base) and mature previews are shown; a file "
        "the first site does not know is asked of the other. off: only the safe site "
        "(civitai.com, --api-base), mature previews blurred.")
    set_nsfw.add_argument("state", choices=("on", "off"))
    _action_json(set_nsfw)
    set_nsfw.set_defaults(handler=run_set_nsfw)

    set_hashing = actions.add_parser(
        "set-hashing", parents=parents, help="hash big files in parallel or one at a time",
        description="auto (default): one big file at a time on hard disks and network "
        "shares (several at once make a disk's head thrash), in parallel on solid-state "
        "disks; a virtual machine's disk (virtio, Xen) counts as solid-state. parallel: "
        "always several at once. one-at-a-time: one per disk everywhere (a hard disk "
        "auto cannot see, e.g. behind a virtual machine or on macOS).")
    set_hashing.add_argument("mode", choices=HASHING_CHOICES)
    _action_json(set_hashing)
    set_hashing.set_defaults(handler=run_set_hashing)

    set_companions = actions.add_parser(
        "set-companions", parents=parents,
        help="also write Stability Matrix's and Lora Manager's companion files",
        description="The companion files written beside each model civdesk downloads or "
        "identifies, comma-separated: civitai-info (Civitai Helper's .civitai.info, always "
        "written), cm-info (Stability Matrix's .cm-info.json), metadata-json (ComfyUI Lora "
        "Manager's .metadata.json), in those tools' own formats so that they show the "
        "files as connected. A file already there is never written over.")
    set_companions.add_argument("formats", help="e.g. civitai-info,cm-info,metadata-json")
    _action_json(set_companions)
    set_companions.set_defaults(handler=run_set_companions)

    set_layout = actions.add_parser(
        "set-layout", parents=parents, help="name the type folders as a web UI does",
        description="Downloads go to a sub-folder per model type of the download folder: "
        "a1111 names them as AUTOMATIC1111 and Forge do (Stable-diffusion, Lora, VAE, "
        "embeddings…), comfyui as ComfyUI does (checkpoints, loras, vae, embeddings…), "
        "stabilitymatrix as Stability Matrix's shared Data/Models folder does "
        "(StableDiffusion, Lora, LyCORIS, TextualInversion…). A download folder that is "
        "one of these is followed by itself.")
    set_layout.add_argument("layout", choices=sorted(FOLDER_LAYOUTS))
    _action_json(set_layout)
    set_layout.set_defaults(handler=run_set_layout)


def _action_json(parser: argparse.ArgumentParser,
                 what: str = "the settings as they are afterwards") -> None:
    """``--json`` after the action too (``config add-folder X --json``); SUPPRESS keeps
    ``config --json add-folder X`` from being reset by the action's default."""
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help=f"print {what} as JSON")


def run_show(session: Session, args: argparse.Namespace) -> int:
    core = session.core()
    s = core.settings
    record = settings_record(core)  # the key read once (a keychain may prompt or be slow)
    if session.json:
        print_json(record)
        return EXIT_OK
    key = record["api_key"]
    api_key = f"{key['masked']} (from the {key['source']})" if key["set"] else (
        "not set (`civdesk config set-key` to store one)")
    rows = [
        ("Data folder", record["data_dir"]),
        ("Database", record["database"]),
        ("Settings", record["config_dir"]),
        ("Cache", record["cache_dir"]),
        ("Logs", record["logs"]),
        ("Civitai", record["api_base"]),
        ("Civitai, all content", record["mature_api_base"]),
        ("API key", api_key),
        *([("Key storage", key["keychain_note"])] if key["keychain_note"] else []),
        ("Library folders", ", ".join(s.library_folders) or "none (`civdesk scan PATH`)"),
        ("Downloads go to", record["download_root"]),
        ("Mature content", f"allowed (`civdesk config set-nsfw off` to hide), uses "
                           f"{record['site']}" if s.allow_nsfw else
                           "hidden (`civdesk config set-nsfw on` to allow)"),
        ("Hashing threads", s.hash_workers),
        ("Big files hashed", f"{s.hashing} (`civdesk config set-hashing "
                             "auto|parallel|one-at-a-time`)"),
    ]
    lines = table(rows, ("SETTING", "VALUE"))[1:]
    named = f" (named as {LAYOUT_NAMES[s.layout]} does)" if s.layout else ""
    lines += ["", f"Folders per model type{named}:"]
    lines += [f"  {kind}: {place['folder']}{_why_there(place, record['type_folders'][kind])}"
              for kind, place in record["download_folders"].items()]
    print_lines(lines)
    return EXIT_OK


def run_remove_folder(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.scanner import Scanner

    core = session.core()
    folder = Path(args.path).expanduser().resolve()
    if not core.settings.remove_library_folder(folder):
        listed = ", ".join(core.settings.library_folders) or "none"
        raise UsageError(f"{folder} is not a library folder (they are: {listed})")
    core.save_settings()
    forgotten = Scanner(core.library, None, core.settings).forget_folder(folder)
    return _done(session, [f"Removed {folder} from the library folders; the library forgot "
                           f"its {plural(forgotten, 'file')} (they stay on disk)."])


def run_set_download_root(session: Session, args: argparse.Namespace) -> int:
    core = session.core()
    folder = existing_folder(args.path)
    core.settings.download_root = str(folder)
    adopted = core.settings.adopt_layout_of()
    core.save_settings()
    return _done(session, [f"Downloads go to {folder} from now on (LoRAs to "
                           f"{core.settings.folder_for_type('LORA')}, and so on).",
                           *layout_note(core.settings, adopted)])


def settings_record(core: Core) -> dict[str, Any]:
    """The settings as ``config --json`` (and every action's ``--json``) prints them."""
    from civdesk.core.secrets import mask

    s = core.settings
    key = core.api_key()
    key_source = "command line" if core.session_api_key else core.keys.source
    return {
        "data_dir": str(core.paths.data),
        "database": str(core.paths.database),
        "logs": str(core.paths.logs),
        "config_dir": str(core.paths.config),
        "cache_dir": str(core.paths.cache),
        "api_base": core.api_base,
        "mature_api_base": core.mature_api_base,
        "site": core.site,  # where search, model pages and identification go
        "api_key": {"set": key is not None, "source": key_source, "masked": mask(key) or None,
                    # why the key is in a file, not a keychain (none, or a plaintext one)
                    "keychain_note": core.keys.keychain_note},
        "library_folders": list(s.library_folders),
        "download_root": str(s.effective_download_root),
        "type_folders": {kind: str(s.folder_for_type(kind)) for kind in sorted(s.type_folders)},
        # Where downloads of each type really go: a library that keeps its LoRAs in LORA/
        # gets them there (core.placement), whatever the layout names the folder.
        "download_folders": {kind: _placement(core, kind) for kind in sorted(s.type_folders)},
        "layout": s.layout,
        "allow_nsfw": s.allow_nsfw,
        "hash_workers": s.hash_workers,
        "hashing": s.hashing,
        "companion_formats": list(s.companion_formats),
    }


def _placement(core: Core, kind: str) -> dict[str, str]:
    from civdesk.core.placement import placement_of

    place = placement_of(core.settings, core.library, kind)
    return {"folder": str(place.folder), "from": place.source}


def _why_there(place: dict[str, str], setting: str) -> str:
    """Where a type's folder comes from, when it is not the layout's plain name."""
    if place["from"] == "library":
        return f" (learned: the library keeps this type there, instead of {setting})"
    if place["from"] == "settings":
        return " (set by you)"
    return ""


def _done(session: Session, lines: list[str]) -> int:
    """An action's outcome: its lines, or with --json the settings it left."""
    if session.json:
        print_json(settings_record(session.core()))
    else:
        print_lines(lines)
    return EXIT_OK


def run_set_key(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.civitai.keycheck import check_api_key

    if sys.stdin.isatty():
        key = getpass.getpass("Civitai API key (input hidden): ")
    else:
        key = sys.stdin.readline()
    key = key.strip()
    if not key:
        raise UsageError("No API key given; nothing was stored (`config clear-key` forgets one)")
    core = session.core()
    check = check_api_key(core.api_base, key)
    if check.accepted is False:
        # A key Civitai refuses would only replace one that may still work.
        raise KeyRejected(f"{check.message} Nothing was stored")
    keys = core.keys
    keys.set(key)
    where = ("the system keychain" if keys.uses_keychain else
             f"{keys.file} ({keys.keychain_note})" if keys.keychain_note else str(keys.file))
    said = check.message if check.accepted else f"{check.message[:-1]}; stored anyway."
    return _done(session, [f"API key stored in {where}. {said}"])


class KeyRejected(CivdeskError):
    """``config set-key`` with a key Civitai refused (exit code 1)."""


def run_clear_key(session: Session, args: argparse.Namespace) -> int:
    session.core().keys.clear()
    return _done(session, ["The stored API key is forgotten."])


def run_add_folder(session: Session, args: argparse.Namespace) -> int:
    core = session.core()
    folder = existing_folder(args.path)
    if core.settings.add_library_folder(folder):
        adopted = core.settings.adopt_layout_of()
        core.save_settings()
        return _done(session, [f"Added {folder}; `civdesk scan` scans it from now on.",
                               *layout_note(core.settings, adopted)])
    return _done(session, [f"{folder} is already in the library folders."])


def run_find_folders(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.locations import find_model_folders

    core = session.core()
    found = find_model_folders()
    added = [f for f in found if core.settings.add_library_folder(f)] if args.add else []
    adopted = core.settings.adopt_layout_of() if added else None
    if added:
        core.save_settings()
    if session.json:
        print_json({"found": [str(f) for f in found], "added": [str(f) for f in added]})
        return EXIT_OK
    if not found:
        print_lines(["No web UI model folders in the usual places; add yours with "
                     "`civdesk config add-folder PATH`."])
        return EXIT_OK
    if not args.add:
        print_lines([*(str(f) for f in found),
                     "(`civdesk config find-folders --add` adds them to the library folders)"])
        return EXIT_OK
    print_lines([*(f"Added {f}" for f in added),
                 *(f"{f} is in the library folders already" for f in found if f not in added),
                 *layout_note(core.settings, adopted),
                 *(["`civdesk scan` reads them."] if added else [])])
    return EXIT_OK


def run_set_nsfw(session: Session, args: argparse.Namespace) -> int:
    core = session.core()
    core.settings.allow_nsfw = args.state == "on"
    core.save_settings()
    if core.settings.allow_nsfw:
        first, *then = core.sites.lookup_order
        rest = f" (then {then[0]} for files it does not know)" if then else ""
        line = (f"Mature content allowed: search, model pages and identification use "
                f"{first}{rest}.")
    else:
        line = f"Mature content hidden: civdesk asks {core.api_base} only."
    return _done(session, [line])


def run_set_hashing(session: Session, args: argparse.Namespace) -> int:
    core = session.core()
    core.settings.hashing = args.mode
    core.save_settings()
    return _done(session, [f"Big files are hashed: {args.mode}."])


def run_set_companions(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.companion_formats import parse_formats

    try:
        formats = parse_formats(args.formats)
    except ValueError as err:
        raise UsageError(f"{err} (e.g. civitai-info,cm-info,metadata-json)") from None
    core = session.core()
    core.settings.companion_formats = formats
    core.save_settings()
    return _done(session, [f"Companion files written beside downloaded and identified "
                           f"models: {', '.join(formats)}."])


def run_set_layout(session: Session, args: argparse.Namespace) -> int:
    core = session.core()
    core.settings.use_layout(args.layout)
    core.save_settings()
    example = core.settings.folder_for_type("LORA")
    return _done(session, [f"Type folders named as {LAYOUT_NAMES[args.layout]} does: LoRAs go "
                           f"to {example}, and so on (`civdesk config` lists them)."])


def layout_note(settings: Settings, adopted: str | None) -> list[str]:
    """What to tell the user when :meth:`Settings.adopt_layout_of` switched the names."""
    if adopted is None:
        return []
    return [f"{settings.effective_download_root} is a {LAYOUT_NAMES[adopted]} models folder: "
            f"downloads go to its folders (LoRAs to {settings.folder_for_type('LORA')}, and "
            "so on; `civdesk config set-layout a1111` to change)."]
