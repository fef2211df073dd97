"""Shared fixtures. The Qt platform must be set before anything imports Qt."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.double import CivitaiDouble, SampleCatalog, build_sample_catalog

TEST_API_KEY = "test-key"


@pytest.fixture
def civitai() -> Iterator[CivitaiDouble]:
    """A running Civitai double (API + storage hosts on loopback); the valid key is TEST_API_KEY."""
    double = CivitaiDouble(api_key=TEST_API_KEY)
    double.start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def civitai_catalog(civitai: CivitaiDouble) -> SampleCatalog:
    """The double pre-filled with four models (LORA with an update, Checkpoint, TI, VAE)."""
    return build_sample_catalog(civitai)


@pytest.fixture
def tmp_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private CIVDESK_DATA_DIR so nothing touches the real home."""
    data_dir = tmp_path / "civdesk-data"
    data_dir.mkdir()
    monkeypatch.setenv("CIVDESK_DATA_DIR", str(data_dir))
    return data_dir
