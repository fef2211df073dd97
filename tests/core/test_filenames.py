"""Server file names made safe: sanitising, joining, choosing a free name."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civdesk.core.downloads.filenames import (
    MAX_NAME_BYTES,
    free_name,
    name_from_content_disposition,
    safe_join,
    sanitize_filename,
)
from civdesk.core.errors import UnsafePath

WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(10)} | {
    f"LPT{i}" for i in range(10)
}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="plain.safetensors"', "plain.safetensors"),
        ("attachment; filename=bare.ckpt", "bare.ckpt"),
        ("attachment; filename=\"ascii.bin\"; filename*=UTF-8''%C3%A9t%C3%A9.bin", "été.bin"),
        ("attachment; filename*=UTF-8''%E6%A8%A1%E5%9E%8B.safetensors; filename=\"x.bin\"",
         "模型.safetensors"),
        ('attachment; filename="with \\"quote\\".pt"', 'with "quote".pt'),
        ("attachment", None),
        (None, None),
    ],
)
def test_content_disposition_prefers_the_utf8_form(header: str | None, expected: str) -> None:
    assert name_from_content_disposition(header) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("myLora_v10.safetensors", "myLora_v10.safetensors"),
        ("../../evil.safetensors", "_.._evil.safetensors"),
        ("..\\..\\evil", "_.._evil"),
        ("/etc/passwd", "_etc_passwd"),
        ("C:\\Windows\\system32.dll", "C__Windows_system32.dll"),
        ("..", "download"),
        ("", "download"),
        ("   ", "download"),
        (".hidden", "hidden"),
        ("name. . .", "name"),
        ("trailing space .safetensors ", "trailing space .safetensors"),
        ("a\x00b\x1fc\x7f.pt", "abc.pt"),
        ("new\nline.pt", "new line.pt"),
        ("CON", "_CON"),
        ("con.safetensors", "_con.safetensors"),
        ("nul.tar.gz", "_nul.tar.gz"),
        ("COM1 .txt", "_COM1 .txt"),
        ("LPT9", "_LPT9"),
        ("CONSOLE.txt", "CONSOLE.txt"),
        ('a<b>c:d"e|f?g*h', "a_b_c_d_e_f_g_h"),
        ("e\u0301te\u0301.pt", "été.pt"),
    ],
)
def test_sanitize(raw: str, expected: str) -> None:
    assert sanitize_filename(raw) == expected


def test_long_names_keep_their_extension_and_whole_characters() -> None:
    name = sanitize_filename("模" * 300 + ".safetensors")
    assert name.endswith(".safetensors")
    assert len(name.encode()) <= MAX_NAME_BYTES
    name.encode().decode()  # no character cut in half


def _inside(base: PurePosixPath | PureWindowsPath, name: str) -> bool:
    joined = base / name
    return joined.parent == base and joined.name == name and joined.anchor == base.anchor


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_any_string_sanitised_stays_inside_the_folder_on_both_systems(raw: str) -> None:
    name = sanitize_filename(raw)
    assert name and name not in (".", "..")
    assert len(name.encode()) <= MAX_NAME_BYTES
    assert _inside(PurePosixPath("/library/Lora"), name)
    assert _inside(PureWindowsPath("C:/library/Lora"), name)
    # Windows drops trailing dots and spaces and reserves device names.
    assert not name.endswith((".", " "))
    assert name.split(".")[0].rstrip(" ").upper() not in WINDOWS_RESERVED
    assert not any(ord(ch) < 32 for ch in name)
    # Sanitising is stable: a second pass changes nothing.
    assert sanitize_filename(name) == name


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80))
def test_sanitised_names_join_safely_on_this_disk(tmp_path_factory: pytest.TempPathFactory,
                                                  raw: str) -> None:
    folder = tmp_path_factory.getbasetemp() / "dest"
    folder.mkdir(exist_ok=True)
    path = safe_join(folder, sanitize_filename(raw))
    assert path.parent == folder.resolve()


@pytest.mark.parametrize(
    "name", ["", ".", "..", "...", "../x", "a/b", "a\\b", "C:x", "/abs", "x\x00y"]
)
def test_safe_join_refuses_names_that_leave_the_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafePath) as info:
        safe_join(tmp_path, name)
    assert "refused" in str(info.value)


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_safe_join_refuses_a_symlink_pointing_elsewhere(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "model.safetensors").symlink_to(outside / "target")
    with pytest.raises(UnsafePath):
        safe_join(dest, "model.safetensors")
    assert safe_join(dest, "other.safetensors") == dest.resolve() / "other.safetensors"


def test_free_name_counts_up_past_existing_files(tmp_path: Path) -> None:
    assert free_name(tmp_path, "model.safetensors") == "model.safetensors"
    (tmp_path / "model.safetensors").write_bytes(b"a")
    assert free_name(tmp_path, "model.safetensors") == "model (1).safetensors"
    (tmp_path / "model (1).safetensors").write_bytes(b"b")
    assert free_name(tmp_path, "model.safetensors") == "model (2).safetensors"
    assert free_name(tmp_path, "model.safetensors", taken={"model (2).safetensors"}) == (
        "model (3).safetensors"
    )
    assert free_name(tmp_path, "noext") == "noext"
    (tmp_path / "noext").write_bytes(b"c")
    assert free_name(tmp_path, "noext") == "noext (1)"
