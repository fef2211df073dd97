"""Build the Debian/Ubuntu package from the frozen app: ``make package``.

    python scripts/build_deb.py [--app dist/civdesk] [--out dist]

writes ``dist/civdesk_<version>_<arch>.deb`` holding

    /opt/civdesk/                        the PyInstaller one-folder build, as it is
    /usr/bin/civdesk                     a link to /opt/civdesk/civdesk (window and CLI)
    /usr/share/applications/civdesk.desktop
    /usr/share/icons/hicolor/<n>x<n>/apps/civdesk.png
    /usr/share/metainfo/io.github.civdesk.civdesk.metainfo.xml

and depends on the X11/EGL libraries Qt's xcb platform plugin loads, so installing it on a
bare desktop is all a user does. The package owns none of the user's files: removing it
leaves the library, settings and downloads where they are.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from civdesk import APP_NAME, __version__  # noqa: E402  (the version lives in one place)

LINUX = ROOT / "packaging" / "linux"
ICONS = ROOT / "resources" / "icons"
APP_ID = "io.github.civdesk.civdesk"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
#: What Qt's xcb plugin and its EGL/OpenGL integration load at start, by Debian package.
DEPENDS = (
    "libc6", "libegl1", "libgl1", "libfontconfig1", "libfreetype6", "libdbus-1-3",
    "libglib2.0-0", "libx11-6", "libx11-xcb1", "libxcb1", "libxcb-cursor0", "libxcb-icccm4",
    "libxcb-image0", "libxcb-keysyms1", "libxcb-randr0", "libxcb-render-util0",
    "libxcb-shape0", "libxcb-xfixes0", "libxcb-xkb1", "libxkbcommon0", "libxkbcommon-x11-0",
)


def architecture() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True,
                          text=True).stdout.strip()


def release_date() -> str:
    """The build's date (``SOURCE_DATE_EPOCH`` for a reproducible build)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc) if epoch
            else dt.datetime.now(dt.timezone.utc))
    return when.date().isoformat()


def metainfo() -> str:
    text = (LINUX / f"{APP_ID}.metainfo.xml").read_text(encoding="utf-8")
    return text.replace("@VERSION@", __version__).replace("@DATE@", release_date())


def installed_size_kib(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if not p.is_dir()) // 1024 + 1


def control(arch: str, size_kib: int) -> str:
    return "\n".join([
        f"Package: {APP_NAME}",
        f"Version: {__version__}",
        "Section: graphics",
        "Priority: optional",
        f"Architecture: {arch}",
        f"Installed-Size: {size_kib}",
        f"Depends: {', '.join(DEPENDS)}",
        "Maintainer: civdesk developers <civdesk@users.noreply.github.com>",
        "Homepage: https://github.com/civdesk/civdesk",
        "Description: manager for the Stable Diffusion models you keep from Civitai",
        " civdesk keeps a local library of model files (checkpoints, LoRAs, VAEs,",
        " embeddings) in one window: browse Civitai, queue resumable, SHA256-checked",
        " downloads, scan your folders and see which models have updates. The same",
        " executable is a command line: civdesk scan, download, list, updates.",
        "",
    ])


def stage(app: Path, root: Path) -> None:
    """Lay the package's files out under ``root`` as they will be on the system."""
    shutil.copytree(app, root / "opt" / APP_NAME, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / APP_NAME).symlink_to(f"/opt/{APP_NAME}/{APP_NAME}")
    share = root / "usr" / "share"
    (share / "applications").mkdir(parents=True)
    shutil.copy2(LINUX / f"{APP_NAME}.desktop", share / "applications" / f"{APP_NAME}.desktop")
    for size in ICON_SIZES:
        folder = share / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        folder.mkdir(parents=True)
        shutil.copy2(ICONS / f"civdesk-{size}.png", folder / f"{APP_NAME}.png")
    (share / "metainfo").mkdir(parents=True)
    (share / "metainfo" / f"{APP_ID}.metainfo.xml").write_text(metainfo(), encoding="utf-8")
    for path in [root, *root.rglob("*")]:  # dpkg wants 0755 folders, readable files
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)


def build(app: Path, out: Path) -> Path:
    if not (app / APP_NAME).is_file():
        raise SystemExit(f"No frozen app at {app}: run `make app` first")
    arch = architecture()
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{APP_NAME}_{__version__}_{arch}.deb"
    with tempfile.TemporaryDirectory(prefix="civdesk-deb-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        stage(app, root)
        (root / "DEBIAN").mkdir(mode=0o755)
        (root / "DEBIAN" / "control").write_text(
            control(arch, installed_size_kib(root)), encoding="utf-8")
        subprocess.run(["dpkg-deb", "--build", "--root-owner-group", "-Zxz", "-z3", str(root),
                        str(target)], check=True, capture_output=True, text=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", type=Path, default=ROOT / "dist" / APP_NAME,
                        help="the PyInstaller one-folder build (default: dist/civdesk)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist",
                        help="where the .deb goes (default: dist)")
    args = parser.parse_args(argv)
    print(build(args.app.resolve(), args.out.resolve()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
