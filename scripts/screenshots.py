"""Render each page of the window offscreen to PNG files, with a demo library.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py docs/screenshots

The demo runs against the Civitai test double (a real HTTP server on loopback), so the
library is real: model files are written to a temporary folder, scanned, identified and
given previews exactly as the app does it. Nothing touches your own data or the network.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "src")]

from PySide6.QtCore import QSize  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from tests.double import CivitaiDouble, build_sample_catalog  # noqa: E402

from civdesk.core.context import Core  # noqa: E402
from civdesk.core.scanner import Scanner  # noqa: E402
from civdesk.core.secrets import ApiKeyStore  # noqa: E402
from civdesk.core.updates import UpdateChecker  # noqa: E402
from civdesk.ui.library.model import Show  # noqa: E402

WINDOW = QSize(1400, 900)


def wait(app: QApplication, seconds: float, until=None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        if until is not None and until():
            return
        time.sleep(0.01)


def demo_library(double: CivitaiDouble, root: Path) -> Path:
    """Model files from the double's catalog, plus a few more models and one unknown file."""
    catalog = build_sample_catalog(double)
    extra = [
        ("Inkwash Portraits", "LORA", "SDXL 1.0", ["inkwash"], "jpeg"),
        ("Neon Alley", "LORA", "Pony", ["neon alley", "rain"], "png"),
        ("Soft Focus XL", "Checkpoint", "SDXL 1.0", [], "webp"),
        ("Clay Figures", "LoCon", "SD 1.5", ["claymation"], "png"),
        ("Detail Tweaker", "LORA", "SD 1.5", ["detailed"], "png"),
    ]
    versions = [catalog.lora_v1, catalog.checkpoint_v1, catalog.embedding_v1, catalog.vae_v1]
    for name, kind, base, words, image in extra:
        model = double.add_model(name, kind, tags=["demo"])
        versions.append(
            double.add_version(model, "v1.0", base, words, images=[double.image(image)])
        )
    folders = {
        "LORA": "Lora",
        "LoCon": "Lora",
        "Checkpoint": "Stable-diffusion",
        "TextualInversion": "embeddings",
        "VAE": "VAE",
    }
    for version in versions:
        model = double.catalog.model_of(version)
        f = version.files[0]
        folder = root / folders.get(model.type, "Other")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f.name).write_bytes(f.read_bytes())
    # A copy (shows the Duplicates view) and a file Civitai does not know.
    lora = catalog.lora_v1.files[0]
    (root / "Lora" / "old").mkdir(exist_ok=True)
    (root / "Lora" / "old" / lora.name).write_bytes(lora.read_bytes())
    (root / "Lora" / "my_own_training_e10.safetensors").write_bytes(b"\x08" + bytes(7) + b"{}" * 8)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the PNG files")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    app = QApplication(sys.argv[:1])
    from civdesk.ui import tasks
    from civdesk.ui.app import configure_application
    from civdesk.ui.icons import app_icon
    from civdesk.ui.main_window import MainWindow
    from civdesk.ui.theme import apply_theme

    with tempfile.TemporaryDirectory(prefix="civdesk-shots-") as tmp, CivitaiDouble() as double:
        data = Path(tmp) / "data"
        core = Core.open(data, api_base=double.base_url)
        core.keys = ApiKeyStore(core.paths.config, keyring_backend=None)
        library = demo_library(double, Path(tmp) / "models")
        core.settings.library_folders = [str(library)]
        core.save_settings()
        summary = Scanner(core.library, core.client(), core.settings).scan()
        print(f"demo library: {summary.found} files, {summary.identified} identified")
        UpdateChecker(core.library, core.client()).check(force=True)  # fills "Updates"

        configure_application(app, core)
        apply_theme(app, force_dark=True)
        window = MainWindow(core, icon=app_icon(), use_tray=False)
        window.resize(WINDOW)
        window.show()
        lib = window.library
        wait(app, 5, until=lambda: len(lib.snapshot.entries) == summary.found)
        written = []

        def shot(name: str, settle: float = 1.5) -> None:
            wait(app, settle, until=lambda: window.thumbnails.pending_count == 0)
            wait(app, 0.2)
            path = args.out / f"{name}.png"
            window.grab().save(str(path))
            written.append(path)

        window.show_page("models")
        lib.select_path(next(e.path for e in lib.snapshot.entries if e.type == "LORA"))
        lib.grid.viewport().repaint()
        shot("models")
        lib.show_filter(("show", Show.DUPLICATES))
        shot("models-duplicates")
        lib.show_filter(("type", None))

        window.show_page("civitai")
        window.browser.search()
        wait(app, 5, until=lambda: window.browser.results.rowCount() > 0)
        window.browser.view.viewport().repaint()
        shot("civitai", settle=3)

        window.show_page("settings")
        window.settings_page.advanced_group.setChecked(True)
        shot("settings")

        window.close()
        tasks.shutdown()
        core.close()
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
