"""How the window holds up with a big library, and while a scan and a download run.

    QT_QPA_PLATFORM=offscreen python bench/bench_gui.py [--models 10000] [--scan-files 2000]

Figures:

* open: time from building the window to the grid showing a 10,000-file library (rows
  built through the Library API, each with its own generated preview image), and until the
  thumbnails on screen are decoded;
* stall: a QTimer fires every 5 ms on the GUI thread and records the gaps between firings
  while a large scan and a download (from the Civitai test double, on loopback, in a child
  process so its server threads do not share civdesk's GIL as civitai.com's never would)
  run, and until what follows the scan is done (the library read again and shown, the
  quiet update check and its reload); the worst gap is the longest the window could not
  respond. Target: no stall over 50 ms;
* new cards: a repaint of the grid right after every card on screen changed (as after a
  reload) while two Python threads keep the GIL busy — the longest single paint event, and
  the time until every card on screen is drawn for real (the delegate may spread a screen
  of new cards over several event-loop turns);
* peak memory of the process.

``--trace-slow-events MS`` also lists every event whose dispatch on the GUI thread took
longer than MS during the scan and download (receiver class, event type): what the stalls
are. The tracing itself adds a Python call per event, so its run's gaps are not comparable.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MiB, make_file, peak_rss_mib
from _double_proc import DoubleProcess
from PySide6.QtCore import QElapsedTimer, QTimer
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication

from civdesk.core.civitai.schema import ModelVersion
from civdesk.core.context import Core
from civdesk.core.library.repository import FileRecord
from civdesk.core.secrets import ApiKeyStore

STALL_TARGET_MS = 50
TYPES = ("LORA", "Checkpoint", "TextualInversion", "VAE", "LoCon")


def wait(app: QApplication, seconds: float, until) -> float:
    """Run the event loop until ``until()`` or ``seconds``; the time it took."""
    start = time.perf_counter()
    while time.perf_counter() - start < seconds and not until():
        app.processEvents()
        time.sleep(0.001)
    return time.perf_counter() - start


def build_library(core: Core, root: Path, count: int) -> None:
    """``count`` identified files, each with its own preview, stored through the Library API.

    In batches through the bulk methods the scanner uses (one statement per table a batch).
    """
    previews = root / "previews"
    previews.mkdir(parents=True)
    image = QImage(192, 240, QImage.Format.Format_RGB32)
    batch = 500
    for first in range(1, count + 1, batch):
        ids = range(first, min(first + batch, count + 1))
        versions = []
        records = []
        for i in ids:
            kind = TYPES[i % len(TYPES)]
            versions.append(
                ModelVersion.from_json(
                    {
                        "id": 100_000 + i,
                        "modelId": i,
                        "name": "v1.0",
                        "baseModel": "SD 1.5",
                        "trainedWords": [f"word{i}"],
                        "model": {"name": f"Model {i:05d}", "type": kind},
                        "files": [
                            {
                                "id": 200_000 + i,
                                "name": f"model_{i}.safetensors",
                                "sizeKB": 2048,
                                "hashes": {"SHA256": f"{i:064X}"},
                            }
                        ],
                    }
                )
            )
            image.fill(QColor.fromHsv(i * 37 % 360, 160, 200))
            preview = previews / f"model_{i}.preview.jpeg"
            image.save(str(preview), "JPEG", 80)
            records.append(
                FileRecord(
                    path=root / kind / f"model_{i}.safetensors",
                    size=2048 * 1024,
                    mtime_ns=i,
                    inode=i,
                    sha256=f"{i:064X}",
                    version_id=100_000 + i,
                    file_id=200_000 + i,
                    preview_path=preview,
                )
            )
        core.library.upsert_versions(versions)
        core.library.register_files(records)


class SlowEventTracer(QApplication):
    """A QApplication timing each event dispatch; keeps the ones over ``threshold_ms``."""

    def __init__(self, argv: list[str]) -> None:
        super().__init__(argv)
        self.threshold_ms: float | None = None
        self.slow: list[tuple[float, float, str, str]] = []  # (ended at, ms, receiver, type)
        self.collections: list[tuple[float, float, int, str]] = []  # (ended at, ms, gen, thread)
        self._gc_started = 0.0
        gc.callbacks.append(self._gc_timed)

    def _gc_timed(self, phase: str, info: dict[str, int]) -> None:
        """Times every garbage collection (on whichever thread it runs)."""
        if self.threshold_ms is None:
            return
        now = time.perf_counter()
        if phase == "start":
            self._gc_started = now
            return
        name = threading.current_thread().name
        self.collections.append((now, (now - self._gc_started) * 1000, info["generation"], name))

    def notify(self, receiver, event) -> bool:  # type: ignore[no-untyped-def]
        if self.threshold_ms is None:
            return super().notify(receiver, event)
        start = time.perf_counter()
        kind = event.type()
        try:
            return super().notify(receiver, event)
        finally:
            ms = (time.perf_counter() - start) * 1000
            if ms > self.threshold_ms:
                name = receiver.objectName() if receiver is not None else ""
                what = f"{type(receiver).__name__}({name})"
                self.slow.append((time.perf_counter(), ms, what, str(kind).rsplit(".", 1)[-1]))


class StallMeter:
    """Fires every 5 ms on the GUI thread and keeps the gaps between firings."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.ends: list[float] = []  # perf_counter() at the end of each gap
        self._clock = QElapsedTimer()
        self._timer = QTimer()
        self._timer.setInterval(5)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._clock.start()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        self.gaps.append(self._clock.nsecsElapsed() / 1e6)
        self.ends.append(time.perf_counter())
        self._clock.restart()


class BusyThreads:
    """Python threads spinning, to make the GUI thread wait for the GIL as workers do."""

    def __init__(self, count: int = 2) -> None:
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._spin, daemon=True) for _ in range(count)]

    def _spin(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1

    def __enter__(self) -> BusyThreads:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def print_trace(app: SlowEventTracer, meter: StallMeter, started: float) -> None:
    """The slow events, the collections over the threshold and the gaps over the target, in
    the order they ended (seconds since the scan and download started)."""
    threshold = app.threshold_ms or 0.0
    lines = [(end, f"slow event: {ms:6.1f} ms  {kind:<16} {receiver}")
             for end, ms, receiver, kind in app.slow]
    lines += [(end, f"collection: {ms:6.1f} ms  generation {gen} on {thread}")
              for end, ms, gen, thread in app.collections if ms > threshold / 2]
    lines += [(end, f"GAP:        {gap:6.1f} ms")
              for end, gap in zip(meter.ends, meter.gaps, strict=True) if gap > STALL_TARGET_MS]
    for end, text in sorted(lines):
        print(f"{end - started:7.3f} s  {text}")


def measure_new_card_repaints(app: QApplication, page, repeats: int = 10) -> None:  # type: ignore[no-untyped-def]
    """Repaint a screen of cards none of which is cached, under a busy GIL; print figures."""
    viewport = page.grid.viewport()
    delegate = page.delegate
    first_paints, complete = [], []
    with BusyThreads():
        for _ in range(repeats):
            delegate.cards.clear()
            start = time.perf_counter()
            viewport.repaint()  # one synchronous paint event, as after a reload
            first_paints.append((time.perf_counter() - start) * 1000)
            wait(app, 10, lambda: not getattr(delegate, "has_deferred_cards", False))
            complete.append((time.perf_counter() - start) * 1000)
    print(
        f"new cards ({len(delegate.cards)} on screen, 2 busy threads, {repeats} repaints): "
        f"first paint event median {statistics.median(first_paints):.1f} ms, "
        f"max {max(first_paints):.1f} ms; all drawn for real after median "
        f"{statistics.median(complete):.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--scan-files", type=int, default=2_000)
    parser.add_argument("--download-mib", type=int, default=256)
    parser.add_argument("--trace-slow-events", type=float, default=None, metavar="MS")
    args = parser.parse_args(argv)

    app = SlowEventTracer(sys.argv[:1]) if args.trace_slow_events else QApplication(sys.argv[:1])
    from civdesk.ui import tasks
    from civdesk.ui.app import collect_garbage_on_gui_thread, tune_runtime_for_gui
    from civdesk.ui.library.delegate import CardDelegate
    from civdesk.ui.library.model import Role
    from civdesk.ui.main_window import MainWindow
    from civdesk.ui.thumbnails import thumbnail_key

    collect_garbage_on_gui_thread(app)  # as run_gui does once the application exists

    with contextlib.ExitStack() as stack:
        tmp_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="civdesk-bench-")))
        source = make_file(tmp_path / "big_download.safetensors", args.download_mib * MiB)
        double = stack.enter_context(
            DoubleProcess([{"path": str(source), "model": "Big Download", "type": "Checkpoint"}])
        )
        core = Core.open(tmp_path / "data", api_base=double.base_url)
        core.keys = ApiKeyStore(core.paths.config, keyring_backend=None)
        t0 = time.perf_counter()
        build_library(core, tmp_path / "lib", args.models)
        print(f"built {args.models} library rows with previews in {time.perf_counter() - t0:.1f} s")

        # -- open ---------------------------------------------------------------------------
        start = time.perf_counter()
        window = MainWindow(core, use_tray=False)
        window.resize(1400, 900)
        window.show_page("models")
        window.show()
        tune_runtime_for_gui()  # as run_gui does before its event loop
        page = window.library
        loaded = wait(app, 60, lambda: len(page.snapshot.entries) == args.models)
        page.grid.viewport().repaint()
        size = CardDelegate.thumb_size()
        first = [page.proxy.index(r, 0).data(Role.Preview) for r in range(8)]
        keys = [thumbnail_key(p, size) for p in first if p]
        wait(app, 60, lambda: all(window.thumbnails.cached(k) is not None for k in keys))
        shown = time.perf_counter() - start
        print(
            f"open: library of {args.models} on screen in {loaded * 1000:.0f} ms, "
            f"first thumbnails in {shown * 1000:.0f} ms"
        )

        measure_new_card_repaints(app, page)

        # -- stalls during a scan and a download ------------------------------------------------
        scan_root = tmp_path / "scan"
        for i in range(args.scan_files):
            folder = scan_root / f"folder{i // 200:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            make_file(folder / f"file_{i}.safetensors", 64 * 1024 if i % 100 else 8 * MiB)
        version_id = double.served[0]["version_id"]
        core.settings.library_folders = [str(scan_root)]
        meter = StallMeter()
        if isinstance(app, SlowEventTracer):
            app.threshold_ms = args.trace_slow_events
        meter.start()
        started = time.perf_counter()
        window.downloads.enqueue(version_id, dest_dir=str(tmp_path / "downloads"))
        window.start_scan()
        wait(app, 600, lambda: not window.scans.running)
        scan_s = time.perf_counter() - started
        wait(
            app,
            600,
            lambda: any(t.state in ("completed", "failed") for t in window.downloads.tasks()),
        )
        both_s = time.perf_counter() - started
        # What follows a scan is part of it: the library read again and shown, the quiet
        # update check, and the read after that.
        wait(app, 600, lambda: not page.update_check_running and not page.reloading)
        settled_s = time.perf_counter() - started
        meter.stop()
        if isinstance(app, SlowEventTracer):
            app.threshold_ms = None
            print_trace(app, meter, started)
        gaps = sorted(meter.gaps)
        worst = gaps[-1] if gaps else 0.0
        p99 = gaps[int(len(gaps) * 0.99)] if gaps else 0.0
        state = next((t.state for t in window.downloads.tasks()), "none")
        print(
            f"scan of {args.scan_files} files: {scan_s:.1f} s; "
            f"download of {args.download_mib} MiB: {state} after {both_s:.1f} s; "
            f"library reloaded and checked for updates after {settled_s:.1f} s"
        )
        print(
            f"event loop: {len(gaps)} ticks, median gap {statistics.median(gaps):.1f} ms, "
            f"p99 {p99:.1f} ms, worst {worst:.1f} ms "
            f"({'OK' if worst <= STALL_TARGET_MS else 'over'} the {STALL_TARGET_MS} ms target)"
        )
        print(f"peak memory: {peak_rss_mib():.0f} MiB")
        window.close()
        tasks.shutdown()
        core.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
