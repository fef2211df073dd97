"""Find civdesk's bundled files (icons, placeholder images, the stylesheet).

The files live in the top-level ``resources/`` folder of the repository. civdesk runs from
two layouts, and this module is the only code that knows both:

* a source checkout, including ``pip install -e .``: ``<repo>/resources`` next to ``src/``;
* the frozen app built by ``build.spec``: PyInstaller copies the folder to
  ``<bundle>/resources``, where ``<bundle>`` is ``sys._MEIPASS`` (the one-folder
  ``_internal`` directory, the one-file temporary directory, or ``Contents/Resources`` in
  a macOS ``.app``).

* an installed wheel (``pip install civdesk-….whl``, also ``--user`` and virtual
  environments): the wheel's data files put the folder in ``<prefix>/share/civdesk/resources``.

When none holds the files, :func:`resources_root` raises :class:`ResourcesMissing` rather
than letting Qt draw blank icons.

No Qt here: the core and the command line may ask for a path without loading Qt.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

from civdesk.core.errors import CivdeskError

#: Overrides the search, e.g. for a distribution that installs the files under /usr/share.
ENV_RESOURCES = "CIVDESK_RESOURCES"

# A file every complete resources folder has: tells a real folder from a stray one.
_MARKER = Path("icons") / "civdesk-256.png"


class ResourcesMissing(CivdeskError):
    def __init__(self, searched: list[Path]) -> None:
        where = ", ".join(str(path) for path in searched) or "nowhere"
        super().__init__(
            f"civdesk's resource files are missing (looked in {where}); "
            f"reinstall civdesk or set {ENV_RESOURCES} to its resources folder"
        )
        self.searched = searched


def candidate_roots() -> list[Path]:
    """Where the resources folder may be, most specific first."""
    candidates: list[Path] = []
    override = os.environ.get(ENV_RESOURCES)
    if override:
        candidates.append(Path(override).expanduser())
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / "resources")
    # src/civdesk/resources.py -> the repository root holds resources/.
    candidates.append(Path(__file__).resolve().parents[2] / "resources")
    # An installed wheel: its data files went under the prefix it was installed into.
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix, _user_base())):
        if prefix:
            candidates.append(Path(prefix) / "share" / "civdesk" / "resources")
    return candidates


def _user_base() -> str | None:
    """Where ``pip install --user`` puts data files (None when site is disabled)."""
    import site

    return getattr(site, "USER_BASE", None)


@cache
def resources_root() -> Path:
    """The resources folder for this run (looked up once).

    Raises :class:`ResourcesMissing` when no candidate holds the expected files.
    """
    candidates = candidate_roots()
    for root in candidates:
        if (root / _MARKER).is_file():
            return root
    raise ResourcesMissing(candidates)


def resource_path(*parts: str) -> Path:
    """The path of a bundled file, e.g. ``resource_path("icons", "civdesk-64.png")``.

    The file itself is not checked (callers decide whether a missing one is fatal); the
    resources folder is, see :func:`resources_root`.
    """
    path = resources_root().joinpath(*parts)
    # Parts come from code, never from users; still, refuse to leave the folder.
    if not path.resolve().is_relative_to(resources_root().resolve()):
        raise ValueError(f"resource path leaves the resources folder: {parts!r}")
    return path
