"""``civdesk config`` shows every folder civdesk really uses: a type folder the library
taught it (LoRAs kept in ``my loras/``), and where the API key is kept when no keychain is."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import TEST_API_KEY
from tests.double import SampleCatalog
from tests.e2e import test_cli
from tests.e2e.test_cli import Cli, put

# test_cli's fixtures: civdesk against the double with a private data folder and home.
cli, cli_env, home = test_cli.cli, test_cli.cli_env, test_cli.home


def test_config_shows_the_folder_learned_from_the_library(
        cli: Cli, civitai_catalog: SampleCatalog, tmp_path: Path) -> None:
    c = civitai_catalog
    library = (tmp_path / "models").resolve()
    put(library / "my loras", c.lora_v1)
    put(library / "my loras", c.lora_v1, "a copy.safetensors")
    assert cli("scan", str(library)).code == 0

    shown = cli("config", "--json").json
    assert shown["download_folders"]["LORA"] == {"folder": str(library / "my loras"),
                                                 "from": "library"}
    assert shown["type_folders"]["LORA"] == str(library / "Lora")  # the layout's name
    assert shown["download_folders"]["Checkpoint"] == {
        "folder": str(library / "Stable-diffusion"), "from": "layout"}
    text = cli("config").stdout
    assert (f"  LORA: {library / 'my loras'} (learned: the library keeps this type there, "
            f"instead of {library / 'Lora'})") in text.splitlines()
    got = cli("download", str(c.lora_v2.id), "--json")  # and a download goes there
    assert got.code == 0 and Path(got.json["path"]).parent == library / "my loras"


def test_config_says_why_the_key_is_in_a_file(cli: Cli, tmp_path: Path) -> None:
    env = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "CIVITAI_API_KEY": ""}
    stored = cli("config", "set-key", stdin=TEST_API_KEY + "\n", env=env)
    assert stored.code == 0, stored.stderr
    assert "(no system keychain was found: the key is kept in" in stored.stdout
    key = cli("config", "--json", env=env).json["api_key"]
    assert key["source"] == "file"
    assert key["keychain_note"].startswith("no system keychain was found: the key is kept in ")
    assert "Key storage" in cli("config", env=env).stdout
