"""The window and the library: what a reload of the Models page costs the other pages."""

from __future__ import annotations

from pathlib import Path

from tests.double import SampleCatalog
from tests.ui.conftest import register, write_model_file

from civdesk.core.context import Core
from civdesk.ui.main_window import MainWindow
from civdesk.ui.tasks import wait_for_pools


def test_the_civitai_badges_follow_a_reload_when_that_page_is_shown(
    qtbot, core: Core, civitai_catalog: SampleCatalog, tmp_path: Path
):
    cat = civitai_catalog
    window = MainWindow(core, use_tray=False)  # an empty library: nothing installed
    qtbot.addWidget(window)
    window.show_page("models")
    with qtbot.waitSignal(window.library.snapshot_loaded, timeout=10_000):
        pass
    register(core.library, write_model_file(tmp_path / "Lora", cat.lora_v1.files[0]),
             double=cat.double, model=cat.lora, version=cat.lora_v1)  # fmt: skip
    with qtbot.waitSignal(window.library.snapshot_loaded, timeout=10_000):
        window.library.refresh()
    assert window.library.model.total_count == 1
    wait_for_pools()  # a read of the installed versions, were one started, is over
    qtbot.wait(50)  # and its result delivered
    # The Civitai page is hidden: its installed versions are not read on every reload ...
    assert window.browser.results.installed == {}
    # ... but as soon as it is shown.
    window.show_page("civitai")
    qtbot.waitUntil(
        lambda: window.browser.results.installed == {cat.lora.id: {cat.lora_v1.id}},
        timeout=10_000,
    )
    # On screen, the page follows each reload at once.
    register(core.library, write_model_file(tmp_path / "VAE", cat.vae_v1.files[0]),
             double=cat.double, model=cat.vae)  # fmt: skip
    with qtbot.waitSignal(window.library.snapshot_loaded, timeout=10_000):
        window.library.refresh()
    qtbot.waitUntil(lambda: cat.vae.id in window.browser.results.installed, timeout=10_000)
    window.close()
