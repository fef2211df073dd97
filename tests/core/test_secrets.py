"""The API key store: file fallback (0600), an in-memory keychain, the env override.

The real system keychain is never touched: every store gets its backend injected.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService, Windows, chainer, fail, macOS, null
from keyring.errors import KeyringLocked, PasswordDeleteError

from civdesk.core.secrets import (
    ENV_API_KEY,
    KEY_FILE_NAME,
    KEYRING_SERVICE,
    KEYRING_USER,
    ApiKeyStore,
    mask,
    usable_backend,
)

KEY = "0123456789abcdef0123456789abcdef"


class MemoryKeyring(KeyringBackend):
    """A real (if forgetful) keyring backend, so the keychain path runs without an OS one."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}
        self.locked = False

    def get_password(self, service: str, username: str) -> str | None:
        if self.locked:
            raise KeyringLocked("locked")
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.locked:
            raise KeyringLocked("locked")
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.items:
            raise PasswordDeleteError("not found")
        del self.items[(service, username)]


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_API_KEY, raising=False)


def test_file_fallback_round_trip_and_permissions(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "config", keyring_backend=None)
    assert store.get() is None and store.source is None
    store.set(f"  {KEY}\n")
    assert store.get() == KEY and store.source == "file"
    key_file = tmp_path / "config" / KEY_FILE_NAME
    if os.name == "posix":
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(key_file.parent.stat().st_mode) & 0o077 == 0
    store.set("other-key")  # replacing keeps it private
    assert ApiKeyStore(tmp_path / "config", keyring_backend=None).get() == "other-key"
    if os.name == "posix":
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in key_file.parent.iterdir()] == [KEY_FILE_NAME]  # no temp files


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_file_is_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        ApiKeyStore(tmp_path, keyring_backend=None).set(KEY)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / KEY_FILE_NAME).stat().st_mode) == 0o600


def test_clear_and_empty_key(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path, keyring_backend=None)
    store.set(KEY)
    store.clear()
    assert store.get() is None and not (tmp_path / KEY_FILE_NAME).exists()
    store.clear()  # clearing nothing is fine
    store.set(KEY)
    store.set("   ")
    assert store.get() is None


def test_environment_overrides_for_the_session_only(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store = ApiKeyStore(tmp_path, keyring_backend=None)
    store.set(KEY)
    monkeypatch.setenv(ENV_API_KEY, " env-key ")
    assert store.get() == "env-key" and store.source == "environment"
    assert (tmp_path / KEY_FILE_NAME).read_text() == KEY  # not stored
    store.clear()
    assert store.get() == "env-key"  # still overriding this session
    monkeypatch.delenv(ENV_API_KEY)
    assert store.get() is None


def test_keychain_is_used_when_available(tmp_path: Path) -> None:
    ring = MemoryKeyring()
    store = ApiKeyStore(tmp_path, keyring_backend=ring)
    (tmp_path / KEY_FILE_NAME).write_text("stale-file-key")
    store.set(KEY)
    assert list(ring.items.values()) == [KEY]
    assert not (tmp_path / KEY_FILE_NAME).exists()  # no second copy left behind
    assert store.get() == KEY and store.source == "keychain" and store.uses_keychain
    store.clear()
    assert ring.items == {} and store.get() is None


def test_locked_keychain_falls_back_to_the_file(tmp_path: Path) -> None:
    ring = MemoryKeyring()
    ring.locked = True
    store = ApiKeyStore(tmp_path, keyring_backend=ring)
    store.set(KEY)
    assert (tmp_path / KEY_FILE_NAME).read_text() == KEY
    assert store.get() == KEY and store.source == "file"


def test_placeholder_backends_are_not_keychains() -> None:
    assert not usable_backend(fail.Keyring())
    assert not usable_backend(null.Keyring())
    class EmptyChain(chainer.ChainerBackend):
        backends = ()  # what the chainer holds on a machine without any keychain

    assert not usable_backend(EmptyChain())
    assert usable_backend(MemoryKeyring())


def test_mask() -> None:
    assert mask(KEY) == "••••••••cdef"
    assert mask("short") == "••••••••"
    assert mask(None) == mask("") == ""


def test_key_never_in_repr_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ring = MemoryKeyring()
    store = ApiKeyStore(tmp_path, keyring_backend=ring)
    store.set(KEY)
    ring.locked = True
    store.set(KEY)
    assert store.get() == KEY
    assert KEY not in repr(store) and KEY not in str(store)
    assert caplog.records  # the fallback was logged...
    assert KEY not in caplog.text  # ...without the key
    assert KEY not in repr(vars(store))


def test_unwritable_config_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "config"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(Exception) as err:
        ApiKeyStore(blocker, keyring_backend=None).set(KEY)
    from civdesk.core.errors import FileProblem

    assert isinstance(err.value, FileProblem)
    assert "Could not save the API key" in str(err.value) and KEY not in str(err.value)


def test_auto_detection_skips_a_placeholder_keychain(tmp_path: Path) -> None:
    import keyring

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert not ApiKeyStore(tmp_path).uses_keychain
        keyring.set_keyring(MemoryKeyring())
        assert ApiKeyStore(tmp_path).uses_keychain  # constructed only: nothing is stored
    finally:
        keyring.set_keyring(previous)


def simulated(real: type[KeyringBackend]) -> KeyringBackend:
    """The keychain keyring picks on one system, storing in memory here: the class is the
    real one's, so the store's choice sees what it would see there."""

    class Simulated(real):  # type: ignore[valid-type, misc]
        priority = 5  # type: ignore[assignment]
        items: dict[tuple[str, str], str]

        def __init__(self) -> None:
            self.items = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.items.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.items[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.items.pop((service, username), None)

    Simulated.__name__ = Simulated.__qualname__ = real.__name__
    return Simulated()


@pytest.mark.parametrize(
    "real", [Windows.WinVaultKeyring, macOS.Keyring, SecretService.Keyring],
    ids=["windows-credential-locker", "macos-keychain", "linux-secret-service"])
def test_each_systems_keychain_is_chosen(real: type[KeyringBackend], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring

    backend = simulated(real)
    monkeypatch.setattr(keyring, "get_keyring", lambda: backend)
    store = ApiKeyStore(tmp_path)
    store.set(KEY)
    assert backend.items == {(KEYRING_SERVICE, KEYRING_USER): KEY}  # type: ignore[attr-defined]
    assert store.source == "keychain" and store.keychain_note is None
    assert not (tmp_path / KEY_FILE_NAME).exists()


def plaintext_keyring() -> KeyringBackend:
    """keyrings.alt's PlaintextKeyring as keyring would offer it (the package is not
    installed here: a class from that module with a working priority)."""
    backend = simulated(MemoryKeyring)
    type(backend).__module__ = "keyrings.alt.file"
    type(backend).__name__ = "PlaintextKeyring"
    return backend


def chain_of(*members: KeyringBackend) -> KeyringBackend:
    class Chain(chainer.ChainerBackend):
        backends = members  # type: ignore[assignment]

    return Chain()


@pytest.mark.parametrize(("make", "said"), [
    (fail.Keyring, "no system keychain was found"),
    (null.Keyring, "turned off"),
    (plaintext_keyring, "keyrings.alt's PlaintextKeyring, keeps keys in a file"),
    (lambda: chain_of(plaintext_keyring()), "PlaintextKeyring"),
    (lambda: chain_of(), "no system keychain was found"),
], ids=["fail", "null", "plaintext", "chain-of-plaintext", "empty-chain"])
def test_a_keychain_in_name_only_is_refused_with_the_reason(
        make: Any, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring

    backend = make()
    monkeypatch.setattr(keyring, "get_keyring", lambda: backend)
    store = ApiKeyStore(tmp_path)
    store.set(KEY)
    assert (tmp_path / KEY_FILE_NAME).read_text() == KEY and store.source == "file"
    assert not getattr(backend, "items", None)
    note = store.keychain_note
    assert note is not None and said in note and str(tmp_path / KEY_FILE_NAME) in note
    assert KEY not in note


def test_a_chain_led_by_a_real_keychain_is_used(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring

    locker = simulated(Windows.WinVaultKeyring)
    monkeypatch.setattr(keyring, "get_keyring", lambda: chain_of(locker, plaintext_keyring()))
    assert ApiKeyStore(tmp_path).uses_keychain


def test_a_file_chosen_on_purpose_has_no_note(tmp_path: Path) -> None:
    assert ApiKeyStore(tmp_path, keyring_backend=None).keychain_note is None
