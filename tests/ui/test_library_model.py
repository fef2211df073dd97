"""The library item models: real rows in a real database, checked by qtmodeltester."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPersistentModelIndex, Qt
from tests.double import SampleCatalog
from tests.ui.conftest import register, write_model_file
from tests.ui.library_cards import numbered_entry

from civdesk.core.library.search import search_fold
from civdesk.ui.library.model import (
    LibraryFilterProxy,
    LibraryModel,
    LibrarySnapshot,
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


def test_search_folds_case_and_accents() -> None:
    assert search_fold("Ünïcödé Café") == "unicode cafe"
    assert search_fold("STRASSE") == search_fold("Straße")  # casefold, not lower
    assert search_fold("ＳＤＸＬ") == "sdxl"  # full-width letters, as some names use


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
    proxy.set_search("harbór LIGHT")  # accents and case both folded away
    assert _names(proxy) == ["Harbor Light"]
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


# -- snapshots applied as diffs ---------------------------------------------------------------


def _snapshot(entries) -> LibrarySnapshot:
    return LibrarySnapshot(tuple(entries))


def test_a_reload_inserts_and_removes_rows_and_keeps_the_others(qtbot, qtmodeltester):
    model = LibraryModel()
    model.set_snapshot(_snapshot(numbered_entry(i) for i in range(0, 100, 2)))
    pinned = QPersistentModelIndex(model.index(model.row_of("/lib/00010.safetensors"), 0))
    qtmodeltester.check(model)
    resets = []
    model.modelReset.connect(lambda: resets.append(True))
    # Three new files (one range each), two gone, one renamed (it moves to the front).
    fresh = [numbered_entry(i) for i in range(0, 100, 2) if i not in (20, 22, 40)]
    fresh += [numbered_entry(51), numbered_entry(53), numbered_entry(99),
              numbered_entry(40, "A renamed model")]
    with qtbot.waitSignals([model.rowsRemoved, model.rowsInserted]):
        model.set_snapshot(_snapshot(fresh))
    assert not resets
    assert pinned.isValid() and pinned.data() == "Model 00010"
    names = [model.index(r, 0).data() for r in range(model.rowCount())]
    assert names[0] == "A renamed model"
    assert names == sorted(names, key=str.casefold) and len(names) == len(fresh)
    assert model.row_of("/lib/00020.safetensors") is None
    assert model.row_of("/lib/00053.safetensors") == names.index("Model 00053")


def test_a_change_touching_many_places_resets_once(qtbot):
    model = LibraryModel()
    model.set_snapshot(_snapshot(numbered_entry(i) for i in range(500)))
    with qtbot.waitSignal(model.modelReset):
        model.set_snapshot(_snapshot(numbered_entry(i) for i in range(0, 500, 2)))  # 250 gaps
    assert model.rowCount() == 250


def test_the_filter_lives_in_the_model_and_counts_stay_total(qtmodeltester):
    model = LibraryModel()
    kinds = ("LORA", "Checkpoint")
    model.set_snapshot(_snapshot(numbered_entry(i, kind=kinds[i % 2]) for i in range(10)))
    proxy = LibraryFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_filter(model_type="Checkpoint", terms=("0000",))
    assert [proxy.index(r, 0).data() for r in range(proxy.rowCount())] == [
        "Model 00001", "Model 00003", "Model 00005", "Model 00007", "Model 00009"
    ]
    assert model.total_count == 10 and model.row_of("/lib/00002.safetensors") is None
    qtmodeltester.check(proxy)
    proxy.set_filter(model_type=None, terms=())
    assert proxy.rowCount() == 10


def test_a_reload_announces_only_the_rows_whose_data_changed(qtbot, library, civitai_catalog,
                                                            tmp_path):
    cat = civitai_catalog
    register(library, write_model_file(tmp_path / "Lora", cat.lora_v1.files[0]),
             double=cat.double, model=cat.lora, version=cat.lora_v1)
    register(library, write_model_file(tmp_path / "VAE", cat.vae_v1.files[0]),
             double=cat.double, model=cat.vae)
    model = LibraryModel()
    model.set_snapshot(load_snapshot(library))
    changed: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda first, last, *_: changed.append((first.row(), last.row())))
    model.set_snapshot(load_snapshot(library))
    assert changed == []  # the same library: nothing to repaint
    # A copy of the VAE appears: its row is inserted, and only the first VAE's row shows
    # something new (the duplicate badge), not the LORA's.
    copy = write_model_file(tmp_path / "copy", cat.vae_v1.files[0])
    register(library, copy, double=cat.double, model=cat.vae)
    model.set_snapshot(load_snapshot(library))
    first_vae = next(r for r in range(model.rowCount())
                     if model.entry(r).model_id == cat.vae.id and model.entry(r).path != str(copy))
    assert changed == [(first_vae, first_vae)]
    assert model.index(first_vae, 0).data(Role.IsDuplicate)


def test_sort_keys_give_the_collector_nothing_to_walk() -> None:
    """A read of the library keeps one sort key per file: none of them (nor their dict) is
    an object the GUI thread's garbage collector must walk after each reload."""
    import gc

    from civdesk.ui.library.rows import prepare_rows

    snapshot = _snapshot(numbered_entry(i) for i in range(50))
    for key in SortKey:
        rows = prepare_rows(snapshot, (key, False))
        assert not gc.is_tracked(rows.keys)
        assert not any(gc.is_tracked(k) for k in rows.keys.values())


@pytest.mark.parametrize("descending", [False, True])
def test_sort_keys_order_like_their_parts(descending: bool) -> None:
    """Name, then file name (both without case), then path; a name that is the start of
    another sorts first, as it does compared part by part."""
    from civdesk.ui.library.rows import prepare_rows

    names = ["b", "a b", "A", "a", "ab", "a", "Ä", "a-b", "a\tb"]
    entries = [numbered_entry(i, name) for i, name in enumerate(names)]
    rows = prepare_rows(_snapshot(entries), (SortKey.NAME, descending))
    expected = sorted(entries, key=lambda e: (e.model_name.casefold(),
                                              e.file_name.casefold(), e.path),
                      reverse=descending)
    assert [e.path for e in rows.visible] == [e.path for e in expected]
    for key, part in ((SortKey.SIZE, "size"), (SortKey.DATE, "added_at")):
        rows = prepare_rows(_snapshot(reversed(entries)), (key, descending))
        expected = sorted(entries, key=lambda e, p=part: (getattr(e, p), e.path),
                          reverse=descending)
        assert [e.path for e in rows.visible] == [e.path for e in expected]
