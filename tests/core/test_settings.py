"""Settings: defaults, persistence in a real library database, folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from civdesk.core.library import Database, Library
from civdesk.core.settings import (
    A1111,
    COMFYUI,
    DEFAULT_API_BASE,
    STABILITY_MATRIX,
    Settings,
    default_hash_workers,
    detect_layout,
    normalised_api_base,
)


@pytest.fixture
def lib(tmp_path: Path):
    db = Database.open(tmp_path / "library.sqlite3")
    yield Library(db)
    db.close()


def test_defaults_of_an_empty_database(lib: Library) -> None:
    s = Settings.load(lib)
    assert s == Settings()
    assert s.api_base == DEFAULT_API_BASE == "https://civitai.com"
    assert s.mature_api_base == "https://civitai.red"
    assert (s.library_folders, s.download_root, s.allow_nsfw, s.minimize_to_tray) == (
        [], None, False, False)
    assert 1 <= s.hash_workers == default_hash_workers() <= 4
    assert s.type_folders["Checkpoint"] == "Stable-diffusion"
    assert s.type_folders["LoCon"] == s.type_folders["DoRA"] == "Lora"


def test_round_trip_through_the_database(tmp_path: Path, lib: Library) -> None:
    s = Settings.load(lib)
    s.api_base = "http://127.0.0.1:8080"
    s.mature_api_base = "http://127.0.0.1:8081"
    s.add_library_folder(tmp_path / "models")
    s.download_root = str(tmp_path / "downloads")
    s.type_folders["LORA"] = "loras"
    s.allow_nsfw = True
    s.minimize_to_tray = True
    s.hash_workers = 3
    s.hashing = "one-at-a-time"
    s.save(lib)
    lib.db.close()
    with Database.open(lib.db.path) as again:
        loaded = Settings.load(Library(again))
    assert loaded == s
    assert (loaded.mature_api_base, loaded.allow_nsfw) == ("http://127.0.0.1:8081", True)
    assert loaded.hashing == "one-at-a-time"
    # Only the changed type folder is stored, so later default changes still reach users.
    assert Library(lib.db).settings_values()["type_folders"] == {"LORA": "loras"}


def test_two_processes_saving_settings_keep_each_others_changes(
    tmp_path: Path, lib: Library
) -> None:
    seed = Settings.load(lib)
    seed.add_library_folder(tmp_path / "old")
    seed.save(lib)
    # Two commands (or the window and a command), each with the settings it read at start.
    scan_a, config = Settings.load(lib), Settings.load(lib)
    scan_a.add_library_folder(tmp_path / "a")
    config.add_library_folder(tmp_path / "b")
    config.remove_library_folder(str(tmp_path / "old"))
    config.download_root = str(tmp_path / "downloads")
    scan_a.save(lib)
    config.save(lib)

    stored = Settings.load(lib)
    assert stored.library_folders == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert stored.download_root == str(tmp_path / "downloads")
    assert config.library_folders == stored.library_folders  # it sees the other's folder now
    scan_a.allow_nsfw = True
    scan_a.save(lib)  # its stale download root is not written back
    assert Settings.load(lib).download_root == str(tmp_path / "downloads")


def test_malformed_stored_values_fall_back_to_defaults(lib: Library) -> None:
    lib.save_settings({
        "api_base": "ftp://example.com", "mature_api_base": 5, "hash_workers": True,
        "allow_nsfw": "yes", "hashing": "sometimes",
        "library_folders": ["/ok", 5], "type_folders": {"LORA": "my-loras"},
        "minimize_to_tray": True, "unknown_future_key": 1,
    })
    s = Settings.load(lib)
    assert s.api_base == DEFAULT_API_BASE
    assert s.mature_api_base == "https://civitai.red"
    assert s.hash_workers == default_hash_workers()
    assert s.hashing == "auto"
    assert s.allow_nsfw is False and s.library_folders == []
    assert s.minimize_to_tray is True
    assert s.type_folders["LORA"] == "my-loras" and s.type_folders["VAE"] == "VAE"


@pytest.mark.parametrize(("text", "root"), [
    ("https://civitai.com", "https://civitai.com"),
    (" https://civitai.com/ ", "https://civitai.com"),
    ("http://127.0.0.1:8765/api/v1", "http://127.0.0.1:8765"),
    ("http://127.0.0.1:8765/api/v1/", "http://127.0.0.1:8765"),
    ("https://mirror.example/civitai", "https://mirror.example/civitai"),
])
def test_an_api_base_is_the_site_root(text: str, root: str) -> None:
    assert normalised_api_base(text) == root


@pytest.mark.parametrize("text", [
    "", "notaurl", "civitai.com", "ftp://x", "http://", "http:///api/v1", "http://host:port",
])
def test_an_api_base_must_be_a_web_address_with_a_host(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. https://civitai\.com"):
        normalised_api_base(text)


def test_a_stored_api_address_loads_as_its_site_root(lib: Library) -> None:
    lib.save_settings({"api_base": "http://127.0.0.1:8080/api/v1/"})
    assert Settings.load(lib).api_base == "http://127.0.0.1:8080"


def test_folder_for_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    s = Settings()
    assert s.folder_for_type("LORA") == tmp_path / "home" / "civdesk-models" / "Lora"
    s.library_folders = [str(tmp_path / "lib")]
    assert s.folder_for_type("Checkpoint") == tmp_path / "lib" / "Stable-diffusion"
    s.download_root = str(tmp_path / "dl")
    assert s.folder_for_type("TextualInversion") == tmp_path / "dl" / "embeddings"
    assert s.folder_for_type("Upscaler") == tmp_path / "dl" / "ESRGAN"
    assert s.folder_for_type("MotionModule") == tmp_path / "dl" / "AnimateDiff"
    assert s.folder_for_type("Poses") == tmp_path / "dl" / "Other"
    assert s.folder_for_type("SomethingNew") == tmp_path / "dl" / "Other"
    s.type_folders["VAE"] = str(tmp_path / "elsewhere" / "vae")
    assert s.folder_for_type("VAE") == tmp_path / "elsewhere" / "vae"  # absolute: as is


def test_a_type_folder_spelled_with_other_capitals_is_the_one_used(tmp_path: Path) -> None:
    # Windows and macOS take LORA and Lora for one folder; here they are two, and the
    # user's LoRAs live in LORA: downloads go there too, not into a new Lora beside it.
    root = tmp_path / "models"
    (root / "LORA").mkdir(parents=True)
    (root / "stable-diffusion").mkdir()
    s = Settings(download_root=str(root))
    assert s.folder_for_type("LORA") == root / "LORA"
    assert s.folder_for_type("Checkpoint") == root / "stable-diffusion"
    assert s.folder_for_type("VAE") == root / "VAE"  # nothing like it: the name as set
    (root / "Lora").mkdir()  # both spellings (Linux): the exact one
    assert s.folder_for_type("LORA") == root / "Lora"
    s.type_folders["LORA"] = "loras/sdxl"
    (root / "LoRAs" / "SDXL").mkdir(parents=True)
    assert s.folder_for_type("LORA") == root / "LoRAs" / "SDXL"  # at every level


def test_embeddings_of_an_a1111_checkout_go_beside_its_models_folder(tmp_path: Path) -> None:
    webui = tmp_path / "stable-diffusion-webui"
    (webui / "models").mkdir(parents=True)
    s = Settings(download_root=str(webui / "models"))
    # Not yet a checkout (no webui.py): nothing to go by, the type folder as named.
    (webui / "embeddings").mkdir()
    assert s.folder_for_type("TextualInversion") == webui / "models" / "embeddings"
    (webui / "webui.py").write_text("# AUTOMATIC1111")
    assert s.folder_for_type("TextualInversion") == webui / "embeddings"  # where A1111 reads
    assert s.folder_for_type("LORA") == webui / "models" / "Lora"
    s.type_folders["TextualInversion"] = "my-embeddings"  # the user's own name: theirs
    assert s.folder_for_type("TextualInversion") == webui / "models" / "my-embeddings"
    # SD.Next has a webui.py too, but no embeddings folder beside models: it reads them there.
    sdnext = tmp_path / "automatic"
    (sdnext / "models").mkdir(parents=True)
    (sdnext / "webui.py").write_text("# SD.Next")
    assert Settings(download_root=str(sdnext / "models")).folder_for_type(
        "TextualInversion") == sdnext / "models" / "embeddings"


def test_add_library_folder_normalises_and_never_duplicates(tmp_path: Path) -> None:
    s = Settings()
    models = tmp_path / "models"
    assert s.add_library_folder(models)
    assert s.library_folders == [str(models)]
    assert not s.add_library_folder(str(models) + "/")
    assert not s.add_library_folder(tmp_path / "x" / ".." / "models")
    assert not s.add_library_folder(models / "Lora")  # nested in an existing one
    assert s.add_library_folder(tmp_path / "models2")  # a sibling, not nested
    assert s.library_folders == [str(models), str(tmp_path / "models2")]
    assert s.add_library_folder(tmp_path)  # a parent replaces what it contains
    assert s.library_folders == [str(tmp_path)]


def test_add_library_folder_sees_through_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    s = Settings()
    assert s.add_library_folder(real)
    assert not s.add_library_folder(tmp_path / "link")


def test_remove_library_folder(tmp_path: Path) -> None:
    s = Settings()
    s.add_library_folder(tmp_path / "a")
    assert s.remove_library_folder(str(tmp_path / "a") + "/")
    assert not s.remove_library_folder(tmp_path / "a")
    assert s.library_folders == []


def models_folder(root: Path, *subfolders: str) -> Path:
    for name in subfolders:
        (root / name).mkdir(parents=True)
    return root


@pytest.mark.parametrize(("subfolders", "layout"), [
    (("checkpoints", "loras", "vae", "embeddings", "upscale_models"), COMFYUI),
    (("Stable-diffusion", "Lora", "VAE", "ESRGAN"), A1111),
    (("vae", "embeddings", "controlnet"), None),  # names both UIs use: cannot tell
    (("checkpoints", "Stable-diffusion"), None),  # one of each: cannot tell
    # Stability Matrix's shared Data/Models.
    (("StableDiffusion", "Lora", "LyCORIS", "TextualInversion", "VAE", "ESRGAN"),
     STABILITY_MATRIX),
    (("StableDiffusion", "Lora", "Embeddings", "Hypernetwork"), STABILITY_MATRIX),
    ((), None),
])
def test_detect_layout_by_the_folders_only_one_ui_names_so(
    tmp_path: Path, subfolders: tuple[str, ...], layout: str | None
) -> None:
    assert detect_layout(models_folder(tmp_path / "models", *subfolders)) == layout


def test_a_stability_matrix_models_folder_gets_each_type_where_it_keeps_it(
    tmp_path: Path
) -> None:
    data = models_folder(tmp_path / "StabilityMatrix" / "Data" / "Models",
                         "StableDiffusion", "Lora", "LyCORIS", "TextualInversion")
    s = Settings(download_root=str(data))
    assert s.adopt_layout_of() == STABILITY_MATRIX
    assert s.folder_for_type("Checkpoint") == data / "StableDiffusion"
    assert s.folder_for_type("LoCon") == data / "LyCORIS"
    assert s.folder_for_type("LORA") == data / "Lora"
    assert s.folder_for_type("TextualInversion") == data / "TextualInversion"


def test_detect_layout_of_a_missing_folder_is_none(tmp_path: Path) -> None:
    assert detect_layout(tmp_path / "unplugged") is None


def test_a_comfyui_download_root_is_followed_while_the_folders_are_the_defaults(
    tmp_path: Path, lib: Library
) -> None:
    comfy = models_folder(tmp_path / "ComfyUI" / "models", "checkpoints", "loras")
    s = Settings(library_folders=[str(comfy)])
    assert s.layout == A1111
    assert s.adopt_layout_of() == COMFYUI
    assert s.layout == COMFYUI
    assert s.folder_for_type("LORA") == comfy / "loras"
    assert s.folder_for_type("Checkpoint") == comfy / "checkpoints"
    assert s.folder_for_type("Upscaler") == comfy / "upscale_models"
    s.save(lib)
    assert Settings.load(lib).layout == COMFYUI  # kept across a restart

    own = Settings(library_folders=[str(comfy)])
    own.type_folders["LORA"] = "my-loras"  # named by the user: theirs
    assert own.adopt_layout_of() is None and own.folder_for_type("LORA") == comfy / "my-loras"
    assert own.layout is None

    back = Settings(library_folders=[str(comfy)])
    back.use_layout(COMFYUI)
    back.use_layout(A1111)
    assert back.folder_for_type("LORA") == comfy / "Lora"
