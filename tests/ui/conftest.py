"""Fixtures for the window: a real Core on a tmp data dir, pointed at the Civitai double."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QObject
from tests.double import CivitaiDouble, FakeFile, FakeModel, FakeVersion, SampleCatalog

from civdesk.core.civitai.schema import Model
from civdesk.core.context import Core
from civdesk.core.library.repository import Library, LocalFile
from civdesk.core.secrets import ApiKeyStore


def write_model_file(folder: Path, f: FakeFile, name: str | None = None) -> Path:
    """Put the double's file on disk, as if the user had downloaded it earlier."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f.name or f"file-{f.id}.safetensors")
    path.write_bytes(f.read_bytes())
    return path


def register(
    library: Library,
    path: Path,
    *,
    double: CivitaiDouble | None = None,
    model: FakeModel | None = None,
    version: FakeVersion | None = None,
    sha256: str | None = None,
    preview: Path | None = None,
) -> LocalFile:
    """Register a file on disk in the library, identified when a double model is given.

    Builds rows through the Library API only (what the scanner would store), so model and
    view tests need not wait for a scan.
    """
    version_id = file_id = None
    if model is not None and double is not None:
        library.upsert_model(Model.from_json(double.model_json(model)))
        version = version or model.versions[-1]
        version_id = version.id
        file_id = version.files[0].id
        sha256 = sha256 or version.files[0].sha256
    st = path.stat()
    return library.register_file(
        path,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        inode=st.st_ino,
        sha256=sha256,
        version_id=version_id,
        file_id=file_id,
        identified_by="hash" if version_id else None,
        library_root=path.parent,
        preview_path=preview,
        # As the scanner stores it: the hash of the bytes is the one Civitai publishes.
        verified=version is not None and sha256 == version.files[0].sha256,
    )


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def open_core(data_dir: Path, api_base: str) -> Core:
    """A Core on ``data_dir`` whose API key lives in a file there, never the real keychain."""
    core = Core.open(data_dir, api_base=api_base)
    core.keys = ApiKeyStore(core.paths.config, keyring_backend=None)
    return core


@pytest.fixture
def core(
    tmp_data_dir: Path, civitai: CivitaiDouble, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Core]:
    """A real Core on a tmp data dir, talking to the Civitai double."""
    monkeypatch.delenv("CIVITAI_API_KEY", raising=False)
    core = open_core(tmp_data_dir, civitai.base_url)
    try:
        yield core
    finally:
        from civdesk.ui import tasks

        tasks.wait_for_pools(5000)
        core.close()


@pytest.fixture
def model_folder(tmp_path: Path, civitai_catalog: SampleCatalog) -> Path:
    """A library folder holding four of the double's files, the way a user keeps them."""
    cat = civitai_catalog
    root = tmp_path / "models"
    write_model_file(root / "Lora", cat.lora_v1.files[0])
    write_model_file(root / "Stable-diffusion", cat.checkpoint_v1.files[0])
    write_model_file(root / "embeddings", cat.embedding_v1.files[0])
    write_model_file(root / "VAE", cat.vae_v1.files[0])
    return root


@pytest.fixture
def main_window(qtbot, core: Core):
    """The whole window on the tmp data dir (no tray: tests watch the Notifier)."""
    from civdesk.ui.main_window import MainWindow

    window = MainWindow(core, use_tray=False)
    qtbot.addWidget(window)
    wait_until_ready(qtbot, window)
    yield window
    window.close()


def wait_until_ready(qtbot, window) -> None:
    """Until the downloads service has built the queue and started its thread."""
    qtbot.waitUntil(lambda: window.downloads.running, timeout=5000)


# -- images with detail, and a measure of it (for the NSFW blur) ------------------------------


def detailed_png(width: int = 256, height: int = 320, cell: int = 4) -> bytes:
    """A PNG of small saturated squares: about as much fine detail as an image can have."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QColor, QImage

    image = QImage(width, height, QImage.Format.Format_RGB32)
    palette = [QColor("#ff2040"), QColor("#20e060"), QColor("#2060ff"), QColor("#f0f0f0")]
    for y in range(height):
        for x in range(width):
            image.setPixelColor(x, y, palette[(x // cell + 2 * (y // cell)) % len(palette)])
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    assert image.save(buffer, "PNG")
    return bytes(data.data())


def high_frequency(image) -> float:
    """Mean absolute difference between horizontally and vertically neighbouring pixels
    (0–255 per channel): large for fine detail, small for a blur."""
    from PySide6.QtGui import QImage

    rgb = (image.toImage() if hasattr(image, "toImage") else image).convertToFormat(
        QImage.Format.Format_RGB888
    )
    width, height, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    data = bytes(rgb.constBits())[: stride * height]
    rows = [data[y * stride : y * stride + width * 3] for y in range(height)]
    total = count = 0
    for y, row in enumerate(rows):
        total += sum(abs(a - b) for a, b in zip(row[3:], row[:-3], strict=True))
        count += len(row) - 3
        if y:
            total += sum(abs(a - b) for a, b in zip(row, rows[y - 1], strict=True))
            count += len(row)
    return total / count


class LayoutRequests(QObject):
    """An event filter counting the layout requests its watched widget receives."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:
            self.count += 1
        return False
