"""A drive unplugged below a library folder: its files are offline, never forgotten.

Real drives: a tmpfs (it keeps its files while unplugged) bind-mounted where the drive is
plugged in, unmounted to unplug it, so the folder it was mounted on stays behind empty, on
the drive below. Mounting needs root; those tests skip without it. A type folder linked
to a drive is a real symlink whose target goes away. Everything runs through the real
scanner in the ``civdesk`` command line (``scan``, ``list --json``, ``download``).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.double import CivitaiDouble, FakeVersion, make_safetensors
from tests.hardening.helpers import Cli, assert_one_line_error

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


class Drive:
    """A tmpfs "USB drive": plugged in (bind-mounted) at a folder, unplugged (unmounted)."""

    def __init__(self, store: Path) -> None:
        self.store = store  # the drive's own files, kept while it is unplugged
        self.mounted: list[Path] = []

    def plug(self, at: Path) -> None:
        at.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", str(self.store), str(at)], check=True)
        self.mounted.append(at)

    def unplug(self) -> None:
        subprocess.run(["umount", str(self.mounted.pop())], check=True)


@pytest.fixture
def drive(tmp_path: Path) -> Iterator[Drive]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    store = tmp_path / "drive-store"
    store.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(store)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"running as root but mounting is not permitted: {mounted.stderr.strip()}")
    d = Drive(store)
    try:
        yield d
    finally:
        for at in reversed(d.mounted):
            subprocess.run(["umount", "-l", str(at)], capture_output=True, check=False)
        subprocess.run(["umount", "-l", str(store)], capture_output=True, check=False)


def lora(civitai: CivitaiDouble, name: str) -> FakeVersion:
    return civitai.add_version(civitai.add_model(name, "LORA"), name=name)


def put(path: Path, version: FakeVersion | None = None, content: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(version.files[0].read_bytes() if version else make_safetensors(content))
    return path


def ok_json(cli: Cli, *args: str) -> Any:
    result = cli.run(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def listed(cli: Cli) -> dict[str, bool]:
    """``civdesk list --json``: path -> offline."""
    return {e["path"]: e["offline"] for e in ok_json(cli, "list")}


# -- a drive mounted below a library folder, at any depth ----------------------------------


@needs_root
@pytest.mark.parametrize("mount_point", ["Lora", "Lora/external/usb"])
def test_an_unmounted_drive_below_a_library_folder_is_offline_then_back(
    civitai: CivitaiDouble, drive: Drive, tmp_path: Path, mount_point: str
) -> None:
    models = tmp_path / "models"
    at = models / mount_point
    local = put(at.parent / "local.safetensors", lora(civitai, "Local"))  # beside the drive
    deleted = put(at.parent / "deleted.safetensors", content=b"deleted later")
    on_drive = [put(drive.store / "a.safetensors", lora(civitai, "A")),
                put(drive.store / "sub" / "b.safetensors", content=b"b"),
                put(drive.store / "sub" / "deeper" / "c.safetensors", lora(civitai, "C"))]
    drive.plug(at)
    paths = [str(at / p.relative_to(drive.store)) for p in on_drive]
    cli = Cli(tmp_path / "data", civitai.base_url)
    first = ok_json(cli, "scan", str(models))
    assert first["found"] == 5 and first["offline"] == 0

    drive.unplug()  # the mount point stays behind, empty, on the drive below
    deleted.unlink()  # meanwhile a file really deleted from a folder that is there
    assert at.is_dir() and not any(at.iterdir())
    result = cli.run("scan", "--json")
    assert result.returncode == 0, result.stderr
    away = json.loads(result.stdout)
    assert away["removed"] == 1 and away["offline"] == 3
    assert f"under {at} kept as offline" in result.stderr
    assert listed(cli) == {str(local): False, **dict.fromkeys(paths, True)}
    text = cli.run("list")
    assert text.returncode == 0
    marked = [line for line in text.stdout.splitlines() if "[offline]" in line]
    assert len(marked) == 3 and "3 files offline" in text.stdout

    drive.plug(at)  # back: online again, nothing read again
    back = ok_json(cli, "scan")
    assert back["offline"] == 0 and back["removed"] == 0 and back["found"] == 4
    assert listed(cli) == {str(local): False, **dict.fromkeys(paths, False)}

    (drive.store / "sub" / "b.safetensors").unlink()  # deleted from the drive itself
    gone = ok_json(cli, "scan")
    assert gone["removed"] == 1 and paths[1] not in listed(cli)


@needs_root
def test_a_drive_mounted_on_another_drive_there_is_not_the_one_seen(
    civitai: CivitaiDouble, drive: Drive, tmp_path: Path
) -> None:
    """Another drive in the slot (same folder names, not the same device): still offline."""
    models = tmp_path / "models"
    put(drive.store / "Lora" / "x.safetensors", lora(civitai, "X"))
    drive.plug(models / "ext")
    cli = Cli(tmp_path / "data", civitai.base_url)
    ok_json(cli, "scan", str(models))
    drive.unplug()
    other = tmp_path / "other-drive" / "Lora"
    other.mkdir(parents=True)  # the other drive has the same folder, without the file
    subprocess.run(["mount", "--bind", str(tmp_path / "other-drive"), str(models / "ext")],
                   check=True)
    try:
        scanned = ok_json(cli, "scan")
    finally:
        subprocess.run(["umount", str(models / "ext")], check=True)
    assert scanned["removed"] == 0 and scanned["offline"] == 1


@needs_root
def test_a_linked_model_file_is_offline_while_its_drive_is_away_and_gone_once_unlinked(
    civitai: CivitaiDouble, drive: Drive, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    target = put(drive.store / "x.safetensors", lora(civitai, "X"))
    usb = tmp_path / "usb"
    drive.plug(usb)
    link = models / "Lora" / "x.safetensors"
    link.parent.mkdir(parents=True)
    link.symlink_to(usb / target.name)
    cli = Cli(tmp_path / "data", civitai.base_url)
    ok_json(cli, "scan", str(models))
    drive.unplug()  # the link dangles
    assert ok_json(cli, "scan")["offline"] == 1 and listed(cli) == {str(link): True}
    drive.plug(usb)
    assert ok_json(cli, "scan")["offline"] == 0 and listed(cli) == {str(link): False}
    link.unlink()  # deleted from a folder that is there, on the drive the link was on
    assert ok_json(cli, "scan")["removed"] == 1 and listed(cli) == {}


# -- a type folder that is a link to a drive ----------------------------------------------


def test_a_type_folder_linked_to_an_unplugged_drive_is_offline_then_back(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    kept = put(models / "Stable-diffusion" / "base.safetensors", content=b"base")
    usb = tmp_path / "media" / "usb"
    put(usb / "Lora" / "one.safetensors", lora(civitai, "One"))
    put(usb / "Lora" / "styles" / "two.safetensors", content=b"two")
    (models / "Lora").symlink_to(usb / "Lora", target_is_directory=True)
    linked = [str(models / "Lora" / "one.safetensors"),
              str(models / "Lora" / "styles" / "two.safetensors")]
    cli = Cli(tmp_path / "data", civitai.base_url)
    assert ok_json(cli, "scan", str(models))["found"] == 3

    usb.rename(tmp_path / "media" / "unplugged")  # the link dangles
    away = ok_json(cli, "scan")
    assert away["removed"] == 0 and away["offline"] == 2
    assert listed(cli) == {str(kept): False, **dict.fromkeys(linked, True)}

    (tmp_path / "media" / "unplugged").rename(usb)
    back = ok_json(cli, "scan")
    assert back["offline"] == 0 and back["removed"] == 0
    assert listed(cli) == {str(kept): False, **dict.fromkeys(linked, False)}


def test_a_folder_deleted_on_the_same_drive_is_forgotten_and_a_renamed_one_moves(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    """The device rule keeps what is away, not what was deleted or renamed on the disk."""
    models = tmp_path / "models"
    put(models / "Lora" / "old" / "a.safetensors", content=b"a")
    put(models / "Lora" / "renamed" / "b.safetensors", content=b"b")
    put(models / "Lora" / "stays.safetensors", content=b"stays")
    cli = Cli(tmp_path / "data", civitai.base_url)
    ok_json(cli, "scan", str(models))
    shutil.rmtree(models / "Lora" / "old")
    (models / "Lora" / "renamed").rename(models / "Lora" / "new")
    scanned = ok_json(cli, "scan")
    assert scanned["removed"] == 1 and scanned["moved"] == 1 and scanned["offline"] == 0
    assert sorted(listed(cli)) == [str(models / "Lora" / "new" / "b.safetensors"),
                                   str(models / "Lora" / "stays.safetensors")]


# -- a folder that is there but cannot be read ----------------------------------------------


def without_permission_override() -> None:
    """In the child: root loses the capabilities that ignore file permissions."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2
    for cap in (cap_dac_override, cap_dac_read_search):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_an_unreadable_folder_is_offline_not_forgotten(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    private = models / "Lora" / "private"
    hidden = put(private / "p.safetensors", content=b"private")
    put(models / "Lora" / "open.safetensors", content=b"open")
    cli = Cli(tmp_path / "data", civitai.base_url)
    ok_json(cli, "scan", str(models))
    private.chmod(0)
    try:
        process = cli.start("scan", "--json", preexec_fn=without_permission_override)
        out, err = process.communicate(timeout=60)
    finally:
        private.chmod(0o755)
    assert process.returncode == 0, err
    if "Cannot read folder" not in err:
        pytest.skip("this process can read a folder with no permissions")
    scanned = json.loads(out)
    assert scanned["removed"] == 0 and scanned["offline"] == 1
    assert listed(cli)[str(hidden)] is True
    assert ok_json(cli, "scan")["offline"] == 0 and listed(cli)[str(hidden)] is False


# -- a download never creates its folder on the drive below an unplugged one ----------------


def test_a_download_into_a_type_folder_linked_to_an_unplugged_drive_fails_clearly(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    usb = tmp_path / "media" / "usb"
    put(usb / "Lora" / "one.safetensors", lora(civitai, "One"))
    models.mkdir()
    (models / "Lora").symlink_to(usb / "Lora", target_is_directory=True)
    cli = Cli(tmp_path / "data", civitai.base_url)
    ok_json(cli, "scan", str(models))
    assert cli.run("config", "set-download-root", str(models)).returncode == 0
    shutil.rmtree(tmp_path / "media")  # unplugged: the drive's mount folder went with it

    result = cli.run("download", str(lora(civitai, "New").id))

    assert_one_line_error(result, ["seems to be unplugged", str(models / "Lora")])
    assert not (tmp_path / "media").exists() and (models / "Lora").is_symlink()


@needs_root
def test_a_download_never_recreates_a_type_folder_in_an_empty_mount_point(
    civitai: CivitaiDouble, drive: Drive, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    ext = models / "ext"  # the drive holds the whole download folder
    put(drive.store / "Lora" / "one.safetensors", lora(civitai, "One"))
    drive.plug(ext)
    cli = Cli(tmp_path / "data", civitai.base_url)
    ok_json(cli, "scan", str(models))
    assert cli.run("config", "set-download-root", str(ext)).returncode == 0
    drive.unplug()
    wanted = lora(civitai, "Wanted")

    refused = cli.run("download", str(wanted.id))
    assert_one_line_error(refused, ["seems to be unplugged", str(ext)])
    assert list(ext.iterdir()) == []  # no Lora folder made on the disk below

    elsewhere = tmp_path / "elsewhere"
    assert cli.run("download", str(wanted.id), "--dest", str(elsewhere)).returncode == 0

    drive.plug(ext)
    assert cli.run("download", str(lora(civitai, "Later").id)).returncode == 0
    assert len(list((drive.store / "Lora").iterdir())) >= 2


# -- the rule itself, on real folders ---------------------------------------------------------


def test_presence_tells_gone_from_away(tmp_path: Path) -> None:
    from civdesk.core.drives import Presence

    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "other").write_bytes(b"")
    device = os.stat(folder).st_dev
    presence = Presence()
    assert presence.verdict(str(folder / "deleted"), device).gone
    assert not presence.verdict(str(folder / "deleted"), device + 1).gone  # another drive
    assert presence.verdict(str(folder / "deleted"), None).gone  # recorded before devices
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not Presence().verdict(str(empty / "x"), None).gone  # an empty mount point?
    assert Presence().verdict(str(empty / "x"), device).gone  # deleted: same drive
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    assert not Presence().verdict(str(tmp_path / "link" / "a" / "x"), device).gone
    assert not Presence().verdict(str(tmp_path / "vanished" / "x"), None).gone
    assert Presence().verdict(str(tmp_path / "vanished" / "x"), device).gone


def test_a_download_folder_is_refused_only_where_another_drive_was_seen(
    library: Any, tmp_path: Path
) -> None:
    from civdesk.core.drives import DriveAway, check_download_folder

    wiped = tmp_path / "wiped"  # the user emptied it: files seen on this very drive
    wiped.mkdir()
    here = os.stat(wiped).st_dev
    library.register_file(wiped / "a.safetensors", size=1, mtime_ns=1, inode=1, sha256=None,
                          device=here)
    library.set_offline([str(wiped / "a.safetensors")])  # the empty-library-folder rule
    check_download_folder(wiped / "Lora", library)  # allowed: same drive

    slot = tmp_path / "slot"  # an empty mount point: its files were on another device
    slot.mkdir()
    library.register_file(slot / "Lora" / "b.safetensors", size=1, mtime_ns=1, inode=2,
                          sha256=None, device=here + 1)
    with pytest.raises(DriveAway, match="seems to be unplugged"):
        check_download_folder(slot / "Lora", library)
    with pytest.raises(DriveAway):
        check_download_folder(slot, library)
    (slot / "Lora").mkdir()  # the folder is there now (another drive's): not this slot
    check_download_folder(slot / "Checkpoints", library)

    old = tmp_path / "old"  # rows from before devices were recorded: the offline mark
    old.mkdir()
    library.register_file(old / "c.safetensors", size=1, mtime_ns=1, inode=3, sha256=None)
    check_download_folder(old, library)
    library.set_offline([str(old / "c.safetensors")])
    with pytest.raises(DriveAway):
        check_download_folder(old / "Lora", library)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(DriveAway, match="link to a folder that is not there"):
        check_download_folder(tmp_path / "dangling" / "Lora", library)
