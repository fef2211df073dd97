"""Render each page of the window offscreen to PNG files, with a demo library.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py docs/screenshots
    ... --sizes 1280x800 --themes dark --pages models,civitai   (a few only)

Every page at every size in both themes, named ``<page>-<W>x<H>-<theme>.png``
(``models-1280x800-dark.png``). Pages are reached through ``MainWindow.show_page(name)``;
a page the window does not have (or cannot prepare) is skipped with a note, so the script
keeps working while the window's layout changes.

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from civdesk.ui.main_window import MainWindow

SIZES = [QSize(900, 600), QSize(1280, 800), QSize(1920, 1080)]
THEMES = ["dark", "light"]
#: Shots in order: (file name stem, the window page it shows).
SHOTS = [
    ("civitai", "civitai"), ("civitai-detail", "civitai"), ("models", "models"),
    ("models-detail", "models"), ("downloads", "downloads"), ("settings", "settings"),
    ("first-start-models", "models"), ("first-start-civitai", "civitai"),
]


def wait(app: QApplication, seconds: float, until: Callable[[], bool] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        if until is not None and until():
            return
        time.sleep(0.01)


# (name, type, base model, trigger words, downloads, likes). The demo's models.
DEMO_MODELS = [
    ("Inkwash Portraits", "LORA", "SDXL 1.0", ["inkwash"], 48_210, 3_904),
    ("Neon Alley", "LORA", "Pony", ["neon alley", "rain"], 21_870, 2_105),
    ("Soft Focus XL", "Checkpoint", "SDXL 1.0", [], 182_400, 12_880),
    ("Clay Figures", "LoCon", "SD 1.5", ["claymation"], 9_330, 811),
    ("Detail Tweaker", "LORA", "SD 1.5", ["detailed"], 310_500, 25_300),
    ("Golden Hour", "LORA", "SDXL 1.0", ["golden hour"], 15_020, 1_470),
    ("Alpine Dream", "Checkpoint", "SD 1.5", [], 96_700, 7_120),
    ("Watercolor Wash", "LORA", "SD 1.5", ["watercolor"], 64_380, 5_010),
    ("Retro Sci-Fi", "LoCon", "SDXL 1.0", ["retro scifi"], 12_640, 990),
    ("Pixel Quest", "LORA", "Pony", ["pixel art"], 41_200, 3_333),
    ("Velvet Night", "Checkpoint", "Pony", [], 55_800, 4_420),
    ("Paper Lanterns", "LORA", "SD 1.5", ["lanterns"], 7_910, 655),
    ("Ocean Glass", "TextualInversion", "SD 1.5", ["ocean_glass"], 3_480, 301),
    ("Sharp Upscale 4x", "Upscaler", "Other", [], 88_100, 6_540),
    ("Depth Guide", "Controlnet", "SDXL 1.0", [], 27_300, 1_880),
    ("Autumn Woods", "LORA", "SDXL 1.0", ["autumn"], 19_750, 1_640),
    ("Chrome Dreams", "LORA", "Flux.1 D", ["chrome"], 33_600, 2_760),
    ("Misty Harbor", "Checkpoint", "SD 1.5", [], 71_900, 5_900),
    ("Sunset Boulevard", "LORA", "SDXL 1.0", ["sunset"], 11_200, 930),
    ("Candy Pop", "LoCon", "Pony", ["candy pop"], 8_640, 702),
    ("Stained Glass", "LORA", "SD 1.5", ["stained glass"], 25_100, 2_040),
    ("Desert Mirage", "LORA", "Flux.1 D", ["mirage"], 6_320, 540),
    ("Color Fix VAE", "VAE", "SDXL 1.0", [], 140_300, 9_870),
    ("Easy Negative Plus", "TextualInversion", "SD 1.5", ["easynegplus"], 205_000, 14_200),
    ("Cyber Botanica", "LORA", "SDXL 1.0", ["cyber plants"], 17_400, 1_390),
    ("Lunar Tides", "LORA", "SD 1.5", ["lunar"], 5_870, 480),
    ("Cozy Interiors", "Checkpoint", "SDXL 1.0", [], 44_500, 3_610),
    ("Frost Bloom", "LORA", "Pony", ["frost bloom"], 13_380, 1_120),
]
#: Models that get a v2 after the demo library holds v1 (the Update badge).
UPDATED = {"Neon Alley", "Alpine Dream", "Stained Glass", "Frost Bloom"}
#: Models shown in the Civitai browser but not in the library (no badge).
NOT_IN_LIBRARY = {"Desert Mirage", "Lunar Tides", "Cozy Interiors", "Chrome Dreams"}
#: A model whose only preview is marked mature: blurred with an NSFW label in the browser.
MATURE = "Velvet Night"
#: A model Civitai publishes no SHA256 for, downloaded into the library: marked Unverified.
HASHLESS = "Desert Mirage"
FOLDERS = {
    "LORA": "Lora", "LoCon": "Lora", "Checkpoint": "Stable-diffusion",
    "TextualInversion": "embeddings", "VAE": "VAE", "Upscaler": "ESRGAN",
    "Controlnet": "ControlNet",
}  # fmt: skip


def demo_art(seed: int, width: int = 448, height: int = 576) -> bytes:
    """A colourful made-up landscape (sky, sun, layered hills, stars) as a JPEG."""
    import random

    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF
    from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter, QPainterPath

    rng = random.Random(seed)
    hue = rng.randrange(360)
    image = QImage(width, height, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    sky = QLinearGradient(0, 0, 0, height)
    sky.setColorAt(0, QColor.fromHsv(hue, 200, 90))
    sky.setColorAt(0.6, QColor.fromHsv((hue + 40) % 360, 170, 235))
    sky.setColorAt(1, QColor.fromHsv((hue + 70) % 360, 120, 255))
    painter.fillRect(image.rect(), sky)
    painter.setPen(QColor(255, 255, 255, 160))
    for _ in range(40):
        painter.drawPoint(rng.randrange(width), rng.randrange(height // 2))
    painter.setPen(QColor(0, 0, 0, 0))
    painter.setBrush(QColor.fromHsv((hue + 180) % 360, 90, 255, 230))
    radius = rng.randrange(40, 90)
    painter.drawEllipse(QPointF(rng.randrange(80, width - 80), height * 0.38), radius, radius)
    for layer in range(4):
        top = height * (0.5 + 0.12 * layer)
        path = QPainterPath(QPointF(0, height))
        x = 0.0
        while x <= width:
            path.lineTo(x, top + rng.uniform(-60, 40))
            x += rng.uniform(40, 110)
        path.lineTo(width, top)
        path.lineTo(width, height)
        painter.setBrush(QColor.fromHsv((hue + 200 + 25 * layer) % 360, 160, 170 - 38 * layer))
        painter.drawPath(path)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "JPEG", 82)
    return bytes(data.data())


def set_art(image, seed: int) -> None:
    """Give one of the double's images generated art (its URL stays the same)."""
    image.data, image.kind, image.content_type = demo_art(seed), "jpeg", "image/jpeg"
    image.width, image.height = 448, 576


def demo_library(double: CivitaiDouble, root: Path) -> tuple[Path, dict[str, object]]:
    """A believable library: a few dozen models of several types with colourful previews,
    some with a newer version on Civitai, a duplicate and one file Civitai does not know.
    Returns the folder and the double's versions by model name (for the browser shots)."""
    catalog = build_sample_catalog(double)
    for image in list(double.catalog.images.values()):
        set_art(image, image.id)
    on_disk = [catalog.lora_v1, catalog.checkpoint_v1, catalog.embedding_v1, catalog.vae_v1]
    latest: dict[str, object] = {}
    for index, (name, kind, base, words, downloads, likes) in enumerate(DEMO_MODELS):
        model = double.add_model(
            name, kind, tags=["demo", base.lower()], download_count=downloads, thumbs_up=likes,
            creator="demo-artist",
            description=f"<p><b>{name}</b> — a {kind} for {base}. Works best at weight "
                        "0.6–0.9; see the gallery for prompts.</p>",
        )  # fmt: skip
        image = double.image("jpeg", nsfw_level=8 if name == MATURE else 1)
        set_art(image, 1000 + index)
        version = double.add_version(model, "v1.0", base, words, images=[image])
        if name not in NOT_IN_LIBRARY:
            on_disk.append(version)
        latest[name] = version
    # The checkpoints are on an external drive, linked in (unplugged for the offline shot).
    drive = root.parent / "usb" / FOLDERS["Checkpoint"]
    drive.mkdir(parents=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / FOLDERS["Checkpoint"]).symlink_to(drive, target_is_directory=True)
    for version in on_disk:
        model = double.catalog.model_of(version)
        folder = root / FOLDERS.get(model.type, "Other")
        folder.mkdir(parents=True, exist_ok=True)
        f = version.files[0]
        (folder / f.name).write_bytes(f.read_bytes())
    # A copy (the Duplicates view) and a file Civitai does not know.
    lora = catalog.lora_v1.files[0]
    (root / "Lora" / "old").mkdir(exist_ok=True)
    (root / "Lora" / "old" / lora.name).write_bytes(lora.read_bytes())
    (root / "Lora" / "my_own_training_e10.safetensors").write_bytes(b"\x08" + bytes(7) + b"{}" * 8)
    return root, latest


def publish_updates(double: CivitaiDouble, latest: dict[str, object]) -> None:
    """Civitai publishes a v2 of some library models (after the scan saw v1)."""
    for index, name in enumerate(sorted(UPDATED)):
        v1 = latest[name]
        model = double.catalog.model_of(v1)
        image = double.image("jpeg")
        set_art(image, 2000 + index)
        latest[name] = double.add_version(model, "v2.0", v1.base_model, v1.trained_words,
                                          images=[image])  # fmt: skip


def download_hashless(core: Core, double: CivitaiDouble, version: object) -> None:
    """Download ``version`` as civdesk does, with Civitai publishing no SHA256 for it."""
    from civdesk.core.downloads.queue import DownloadQueue

    def no_sha256(answer: dict) -> dict:
        for f in answer.get("files", []):
            f["hashes"] = {}
        return answer

    double.edit_json(f"/api/v1/model-versions/{version.id}", no_sha256)  # type: ignore[attr-defined]
    queue = DownloadQueue.for_core(core)
    queue.add(version.id)  # type: ignore[attr-defined]
    queue.run_until_empty()
    queue.clear_finished()  # the Downloads shot shows its own tasks


def parse_size(text: str) -> QSize:
    width, _, height = text.lower().partition("x")
    return QSize(int(width), int(height))


@dataclass
class Demo:
    """The demo's data: the double, its versions by model name, the library's file count."""

    double: CivitaiDouble
    latest: dict[str, Any]
    files: int


class Shooter:
    """Shows each page of a window and saves it; skips what the window does not have."""

    def __init__(self, app: QApplication, out: Path, demo: Demo) -> None:
        self.app, self.out, self.demo = app, out, demo
        self.written: list[Path] = []
        self.skipped: set[str] = set()

    def note(self, text: str) -> None:
        if text not in self.skipped:
            self.skipped.add(text)
            print(f"note: {text}")

    def show(self, window: Any, page: str) -> bool:
        """``window.show_page(page)``; False (with a note) when there is no such page."""
        window.show_page(page)
        current = getattr(window, "current_page", page)
        if current != page:
            self.note(f"the window has no page {page!r}: skipped")
            return False
        return True

    def save(self, window: Any, name: str, size: QSize, theme: str, settle: float) -> None:
        thumbnails = getattr(window, "thumbnails", None)
        wait(self.app, settle,
             until=lambda: thumbnails is None or thumbnails.pending_count == 0)
        from civdesk.ui.notifications import Toast

        for toast in window.findChildren(Toast):
            toast.dismiss()  # a notification of the demo's own downloads is no page
        window.statusBar().clearMessage()  # so is its passing status message
        wait(self.app, 0.2)
        image = window.grab().toImage()
        if image.size() != size:
            self.note(f"{name}: the window is {image.width()}x{image.height()}, not "
                      f"{size.width()}x{size.height()} (its minimum size)")
        path = self.out / f"{name}-{size.width()}x{size.height()}-{theme}.png"
        image.save(str(path))
        self.written.append(path)

    def shoot(self, window: Any, shots: list[str], size: QSize, theme: str,
              prepare: dict[str, Callable[[Any], None]]) -> None:
        window.resize(size)
        wait(self.app, 0.3)
        for name, page in SHOTS:
            if name not in shots or not self.show(window, page):
                continue
            try:
                prepare.get(name, lambda w: None)(window)
            except Exception as exc:  # a page another change reworked: say so, go on
                self.note(f"{name}: could not be prepared ({type(exc).__name__}: {exc})")
                continue
            self.save(window, name, size, theme, settle=2.0 if "detail" in name else 1.0)


def prepare_library_grid(window: Any) -> None:
    window.library.select_path("")  # no card chosen: the grid without the details
    window.library.grid.scrollToTop()


def prepare_library_detail(demo: Demo) -> Callable[[Any], None]:
    def prepare(window: Any) -> None:
        lib = window.library
        lib.select_path(next(e.path for e in lib.snapshot.entries
                             if e.model_name == "Alpine Dream"))
    return prepare


def prepare_browser(app: QApplication) -> Callable[[Any], None]:
    def prepare(window: Any) -> None:
        browser = window.browser
        if hasattr(browser, "show_results"):
            browser.show_results()
        if browser.results.rowCount() == 0:
            browser.search()
            wait(app, 8, until=lambda: browser.results.rowCount() > 0)
    return prepare


def prepare_browser_detail(app: QApplication, demo: Demo) -> Callable[[Any], None]:
    def prepare(window: Any) -> None:
        browser = window.browser
        prepare_browser(app)(window)
        model_id = demo.double.catalog.model_of(demo.latest["Neon Alley"]).id
        row = browser.results.row_of(model_id)
        browser.open_model(browser.results.model_at(row))
        wait(app, 5, until=lambda: getattr(browser, "_detail_load", None) is not None
             and browser._detail_load.done)
    return prepare


def prepare_settings(window: Any) -> None:
    group = getattr(window.settings_page, "advanced_group", None)
    if group is not None:
        group.setChecked(True)


def queue_downloads(app: QApplication, window: MainWindow, demo: Demo) -> None:
    """One download that completes and one that needs a login (a failed row with why)."""
    demo.double.login_required(demo.latest["Cozy Interiors"])
    for name in ("Lunar Tides", "Cozy Interiors"):
        window.downloads.enqueue(demo.latest[name].id)
    model = window.downloads_page.model
    wait(app, 20, until=lambda: model.rowCount() == 2
         and all(t.state in ("completed", "failed") for t in model.tasks()))
    window.downloads_page.view.setCurrentIndex(model.index(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the PNG files")
    parser.add_argument("--sizes", default=",".join(f"{s.width()}x{s.height()}" for s in SIZES),
                        help="window sizes, e.g. 900x600,1280x800 (default: all three)")
    parser.add_argument("--themes", default=",".join(THEMES), help="dark, light or both")
    parser.add_argument("--pages", default=",".join(name for name, _ in SHOTS),
                        help="shots to take (default: all): " + ", ".join(n for n, _ in SHOTS))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    themes = [t for t in args.themes.split(",") if t]
    shots = [p for p in args.pages.split(",") if p]
    for unknown in sorted(set(shots) - {name for name, _ in SHOTS}):
        print(f"note: no shot named {unknown!r}: skipped")

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
        library, latest = demo_library(double, Path(tmp) / "models")
        core.settings.library_folders = [str(library)]
        core.settings.download_root = str(Path(tmp) / "downloads")
        core.save_settings()
        summary = Scanner(core.library, core.client(), core.settings).scan()
        print(f"demo library: {summary.found} files, {summary.identified} identified")
        publish_updates(double, latest)
        UpdateChecker(core.library, core.client()).check(force=True)  # fills "Updates"
        download_hashless(core, double, latest[HASHLESS])
        demo = Demo(double, latest, summary.found + 1)

        configure_application(app, core)
        theme = apply_theme(app, force_dark=True)
        shooter = Shooter(app, args.out, demo)
        window = MainWindow(core, icon=app_icon(), use_tray=False)
        window.show()
        lib = window.library
        wait(app, 8, until=lambda: len(lib.snapshot.entries) == demo.files)
        if "downloads" in shots:
            queue_downloads(app, window, demo)
        prepare = {
            "civitai": prepare_browser(app),
            "civitai-detail": prepare_browser_detail(app, demo),
            "models": prepare_library_grid,
            "models-detail": prepare_library_detail(demo),
            "settings": prepare_settings,
        }
        later = [s for s in shots if s.startswith("first-start")]
        now = [s for s in shots if not s.startswith("first-start")]
        for name in themes:
            theme.set_choice(name)
            for size in sizes:
                shooter.shoot(window, now, size, name, prepare)
        window.close()

        if later:  # a new user: no library, no key, no folders
            fresh = Core.open(Path(tmp) / "fresh", api_base=double.base_url)
            fresh.keys = ApiKeyStore(fresh.paths.config, keyring_backend=None)
            first = MainWindow(fresh, icon=app_icon(), use_tray=False)
            first.show()
            for name in themes:
                theme.set_choice(name)
                for size in sizes:
                    shooter.shoot(first, later, size, name, {})
            first.close()
        tasks.shutdown()
        core.close()
        if later:
            fresh.close()
    for path in shooter.written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
