"""The library item models: real rows in a real database, checked by qtmodeltester."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPersistentModelIndex, Qt
from tests.double import SampleCatalog
from tests.ui.conftest import register, write_model_file

from civdesk.ui.library.model import (
    LibraryFilterProxy,
    LibraryModel,
    Role,
    Show,
    SortKey,
    load_snapshot,
)


@pytest.fixture
def filled(library, civitai_catalog: SampleCatalog, tmp_path: Path):
    """A LORA (outdated v1, twice on disk), a checkpoint, an embedding and an unknown file."""
    cat = civitai_catalog
    d = cat.double
    lib_dir = tmp_path / "models"
    lora = write_model_file(lib_dir / "Lora", cat.lora_v1.files[0])
    lora_copy = write_model_file(lib_dir / "Lora" / "copy", cat.lora_v1.files[0])
    ckpt = write_model_file(lib_dir / "Stable-diffusion", cat.checkpoint_v1.files[0])
    emb = write_model_file(lib_dir / "embeddings", cat.embedding_v1.files[0])
    unknown = lib_dir / "Lora" / "mystery.safetensors"
    unknown.write_bytes(b"\0" * 512)
    register(library, lora, double=d, model=cat.lora, version=cat.lora_v1)
    register(library, lora_copy, double=d, model=cat.lora, version=cat.lora_v1)
    register(library, ckpt, double=d, model=cat.checkpoint)
    register(library, emb, double=d, model=cat.embedding)
    register(library, unknown, sha256="AB" * 32)
    # What an update check records: Civitai's latest LORA version is v2.
    library.record_update_check(cat.lora.id, cat.lora_v2.id)
    return load_snapshot(library)


def _names(model) -> list[str]:
    return [model.index(r, 0).data() for r in range(model.rowCount())]


def test_snapshot_reads_entries_duplicates_and_updates(filled, civitai_catalog):
    assert len(filled.entries) == 5
    assert filled.type_counts() == {"LORA": 2, "Checkpoint": 1, "TextualInversion": 1, "Unknown": 1}
    assert filled.duplicate_count == 2
    assert set(filled.updates) == {civitai_catalog.lora.id}


def test_source_model_passes_qtmodeltester_and_exposes_roles(qtmodeltester, filled):
    model = LibraryModel()
    model.set_snapshot(filled)
    qtmodeltester.check(model)
    names = _names(model)
    assert names == sorted(names, key=str.casefold)
    row = names.index("Harbor Light")
    index = model.index(row, 0)
    assert index.data(Role.Type) == "Checkpoint"
    assert index.data(Role.BaseModel) == "SDXL 1.0"
    assert index.data(Role.IsDuplicate) is False
    lora = model.index(names.index("Paperfold Style"), 0)
    assert lora.data(Role.IsDuplicate) is True
    assert lora.data(Role.Update).latest_version_id > lora.data(Role.VersionId)
    assert lora.data(Role.TriggerWords) == ["paperfold style"]
    assert b"Entry" in model.roleNames().values()


def test_sorting_keeps_persistent_indexes_on_their_entries(filled):
    model = LibraryModel()
    model.set_snapshot(filled)
    by_name = _names(model)
    pinned = QPersistentModelIndex(model.index(by_name.index("Harbor Light"), 0))
    model.sort_by(SortKey.SIZE, Qt.SortOrder.DescendingOrder)
    sizes = [model.index(r, 0).data(Role.Size) for r in range(model.rowCount())]
    assert sizes == sorted(sizes, reverse=True)
    assert pinned.data() == "Harbor Light"
    model.sort_by(SortKey.NAME)
    assert _names(model) == by_name


def test_proxy_filters_by_type_search_duplicates_and_updates(qtmodeltester, filled):
    model = LibraryModel()
    model.set_snapshot(filled)
    proxy = LibraryFilterProxy()
    proxy.setSourceModel(model)
    qtmodeltester.check(proxy)
    assert proxy.rowCount() == 5

    proxy.set_model_type("LORA")
    assert _names(proxy) == ["Paperfold Style", "Paperfold Style"]
    proxy.set_model_type("Unknown")
    assert _names(proxy) == ["mystery.safetensors"]
    proxy.set_model_type(None)

    proxy.set_search("  HARBOR ")
    assert _names(proxy) == ["Harbor Light"]
    proxy.set_search("paperfold style")  # a trigger word and the name
    assert len(_names(proxy)) == 2
    proxy.set_search("no such thing")
    assert proxy.rowCount() == 0
    proxy.set_search("")

    proxy.set_show(Show.DUPLICATES)
    assert _names(proxy) == ["Paperfold Style", "Paperfold Style"]
    proxy.set_show(Show.UPDATES)
    assert _names(proxy) == ["Paperfold Style", "Paperfold Style"]
    proxy.set_show(Show.ALL)
    qtmodeltester.check(proxy)


def test_removing_paths_drops_rows(qtmodeltester, filled):
    model = LibraryModel()
    model.set_snapshot(filled)
    qtmodeltester.check(model)
    victim = model.index(0, 0).data(Role.Path)
    model.remove_paths([victim, "/not/in/the/library"])
    assert model.rowCount() == 4
    assert model.row_of(victim) is None
