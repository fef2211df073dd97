"""Commands that ask Civitai about models: ``search`` and ``updates``."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from civdesk.cli.background import run_cancellable
from civdesk.cli.commands.common import Subparsers, json_flag, model_type
from civdesk.cli.errors import EXIT_FAILURE, EXIT_OK, PROG, Interrupted
from civdesk.cli.output import plural, print_json, print_lines, shell_quote, table

if TYPE_CHECKING:
    from civdesk.cli.app import Session
    from civdesk.core.civitai.schema import Model
    from civdesk.core.civitai.sites import Sites
    from civdesk.core.context import Core
    from civdesk.core.library import LibraryEntry, UpdateInfo

SORTS = ("Highest Rated", "Most Downloaded", "Newest")
#: How many results one search may ask for (Civitai's page size limit).
SEARCH_LIMITS = range(1, 101)


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    search = subparsers.add_parser(
        "search", parents=parents, help="search Civitai for models",
        description="Search Civitai's models by name. Mature models are included when "
        "the NSFW setting allows them (or with --nsfw).")
    search.add_argument("query", metavar="QUERY", help="words of the model name")
    search.add_argument("--type", type=model_type, metavar="TYPE",
                        help="only this model type (Checkpoint, LORA, TextualInversion, …)")
    search.add_argument("--sort", choices=SORTS, default="Highest Rated")
    search.add_argument("--limit", type=search_limit, default=20,
                        metavar="N", help="how many results (1-100, default 20)")
    search.add_argument("--nsfw", action="store_true", default=None,
                        help="include mature models whatever the setting says")
    json_flag(search)
    search.set_defaults(handler=run_search)

    updates = subparsers.add_parser(
        "updates", parents=parents, help="list library models with a newer version on Civitai",
        description="Ask Civitai, a hundred models per request, which library models have "
        "a version newer than the one on disk. Models asked about in the last hours are "
        "not asked again unless --force is given.")
    updates.add_argument("--force", action="store_true",
                         help="ask about every model, even those checked recently")
    json_flag(updates)
    updates.set_defaults(handler=run_updates)


# ------------------------------------------------------------------------------- search


def search_limit(text: str) -> int:
    """--limit N; checked here because argparse's ``choices`` would list all hundred."""
    low, high = SEARCH_LIMITS[0], SEARCH_LIMITS[-1]
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value not in SEARCH_LIMITS:
        raise argparse.ArgumentTypeError(f"must be between {low} and {high} (not {value})")
    return value


def run_search(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.civitai.schema import SearchQuery

    core = session.core()
    nsfw = core.settings.allow_nsfw if args.nsfw is None else True
    query = SearchQuery(query=args.query, types=(args.type,) if args.type else (),
                        sort=args.sort, nsfw=nsfw, limit=args.limit)
    # Mature models are searched where they are: on the site with all content.
    page = session.tune(core.client(mature=nsfw)).search(query)
    results = [search_result(model, core.sites) for model in page.items]
    if session.json:
        print_json(results)
        return EXIT_OK
    if not results:
        print_lines([f"No models match {args.query!r}."])
        return EXIT_OK
    rows = [(r["id"], r["type"], r["name"],
             f"{r['latest_version_name']} ({r['latest_version_id']})"
             if r["latest_version_id"] else None,
             r["base_model"], r["download_count"]) for r in results]
    print_lines(table(rows, ("MODEL", "TYPE", "NAME", "LATEST VERSION", "BASE", "DOWNLOADS")))
    print_lines(["", "Download the latest version with: civdesk download model:<MODEL>"])
    return EXIT_OK


def search_result(model: Model, sites: Sites) -> dict[str, Any]:
    latest = model.latest_version
    return {
        "id": model.id,
        "name": model.name,
        "type": model.type,
        "creator": model.creator,
        "nsfw": model.nsfw,
        "tags": list(model.tags),
        "download_count": model.download_count,
        "thumbs_up_count": model.thumbs_up_count,
        "latest_version_id": latest.id if latest else None,
        "latest_version_name": latest.name if latest else None,
        "base_model": latest.base_model if latest else None,
        "url": sites.page_of(model),
    }


# ------------------------------------------------------------------------------ updates


def run_updates(session: Session, args: argparse.Namespace) -> int:
    from civdesk.core.updates import UpdateChecker

    core = session.core()
    bar = session.progress()
    checker = UpdateChecker(core.library, session.client())
    cancel = threading.Event()
    try:
        result = run_cancellable(
            lambda: checker.check(force=args.force, cancel=cancel,
                                  progress=lambda done, total: bar.count(done, total,
                                                                         "models checked")),
            cancel.set, name="civdesk-updates")
    except KeyboardInterrupt:
        raise Interrupted("update check interrupted; the models checked so far are "
                          "remembered") from None
    finally:
        bar.finish()
    paths = _paths_by_version(core.library.entries())
    updates = [update_record(u, paths) for u in result.updates]
    if session.json:
        print_json(updates)
    elif updates:
        rows = [(u["model_id"], u["type"], u["model_name"],
                 ", ".join(u["installed_version_names"]), info.latest_label(),
                 _download_hint(core, u)) for info, u in zip(result.updates, updates, strict=True)]
        print_lines(table(rows, ("MODEL", "TYPE", "NAME", "ON DISK", "NEWEST", "GET IT WITH")))
    else:
        print_lines(["Every model in the library is up to date."
                     if result.complete else "No updates found among the models checked."])
    problem = result.problem()
    if problem:
        # What is known is printed above; the line below says what is missing from it.
        print(f"{PROG}: error: {problem}; run `civdesk updates` again later", file=sys.stderr)
        return EXIT_FAILURE
    if not session.json and result.not_listed:
        print_lines([f"({plural(len(result.not_listed), 'model')} in the library "
                     "no longer listed on Civitai.)"])
    if not session.json and result.removed:
        print_lines([f"({plural(result.removed, 'model')} removed from Civitai not checked: "
                     "see `civdesk list --removed`.)"])
    return EXIT_OK


def update_record(update: UpdateInfo, paths: dict[int, list[str]]) -> dict[str, Any]:
    return {
        "model_id": update.model_id,
        "model_name": update.model_name,
        "type": update.model_type,
        "installed_version_ids": list(update.installed_version_ids),
        "installed_version_names": list(update.installed_version_names),
        "latest_version_id": update.latest_version_id,
        "latest_version_name": update.latest_version_name,
        "early_access_until": update.early_access_until(),
        "paths": sorted(p for v in update.installed_version_ids for p in paths.get(v, [])),
    }


def _download_hint(core: Core, update: dict[str, Any]) -> str:
    """The command that fetches the update to where the version on disk is (as the window's
    *Download update* does): its type's folder needs no ``--dest``, a folder of the user's
    own does."""
    command = f"civdesk download {update['latest_version_id']}"
    folders = {os.path.dirname(p) for p in update["paths"]}
    if len(folders) != 1:
        return command
    folder = folders.pop()
    typed = core.folder_for_type(update["type"] or "Other")
    if os.path.normcase(os.path.abspath(folder)) == os.path.normcase(os.path.abspath(typed)):
        return command
    return f"{command} --dest {shell_quote(folder)}"


def _paths_by_version(entries: list[LibraryEntry]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for entry in entries:
        if entry.version_id is not None:
            out.setdefault(entry.version_id, []).append(entry.path)
    return out
