"""The usual web-UI model folders are found where installers put them, and only there."""

from __future__ import annotations

from pathlib import Path

from civdesk.core.locations import find_model_folders


def make(*folders: Path) -> None:
    for folder in folders:
        folder.mkdir(parents=True)


def resolved(*folders: Path) -> list[Path]:
    return [f.resolve() for f in folders]  # what is offered: the real path (tmp may be a link)


def test_the_usual_folders_that_exist_are_found_in_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make(home / "ComfyUI" / "models", home / "stable-diffusion-webui" / "models",
         home / "stable-diffusion-webui" / "embeddings",
         home / "Desktop" / "ComfyUI_windows_portable" / "ComfyUI" / "models",
         home / ".config" / "StabilityMatrix" / "Models",
         home / "Documents" / "unrelated" / "models")
    (home / "stable-diffusion-webui-forge").mkdir()  # a checkout without models: not offered
    assert find_model_folders(home, environ={}, platform="linux") == resolved(
        home / "stable-diffusion-webui" / "models",
        home / "stable-diffusion-webui" / "embeddings",  # A1111 reads embeddings there
        home / "ComfyUI" / "models",
        home / "Desktop" / "ComfyUI_windows_portable" / "ComfyUI" / "models",
        home / ".config" / "StabilityMatrix" / "Models",
    )


def test_stability_matrix_where_each_platform_keeps_it(tmp_path: Path) -> None:
    home, appdata = tmp_path / "home", tmp_path / "AppData" / "Roaming"
    make(appdata / "StabilityMatrix" / "Models",
         home / "Library" / "Application Support" / "StabilityMatrix" / "Models",
         tmp_path / "xdg" / "StabilityMatrix" / "Models")
    assert find_model_folders(home, {"APPDATA": str(appdata)}, "win32") == resolved(
        appdata / "StabilityMatrix" / "Models")
    assert find_model_folders(home, {}, "darwin") == resolved(
        home / "Library" / "Application Support" / "StabilityMatrix" / "Models")
    assert find_model_folders(home, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}, "linux") == (
        resolved(tmp_path / "xdg" / "StabilityMatrix" / "Models"))


def test_a_folder_reached_twice_is_offered_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make(home / "Documents")
    make(tmp_path / "real" / "ComfyUI" / "models")
    (home / "ComfyUI").symlink_to(tmp_path / "real" / "ComfyUI")
    (home / "Documents" / "ComfyUI").symlink_to(tmp_path / "real" / "ComfyUI")
    real = tmp_path / "real" / "ComfyUI" / "models"
    assert find_model_folders(home, {}, "linux") == resolved(real)


def test_nothing_installed_finds_nothing(tmp_path: Path) -> None:
    assert find_model_folders(tmp_path, {}, "linux") == []
