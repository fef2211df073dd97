"""The Civitai API key: kept in the OS keychain, else in a file only the user can read.

Order of precedence when reading: the ``CIVITAI_API_KEY`` environment variable (for this
session only, never stored), then the keychain, then the ``api_key`` file in the config
folder. The key is never kept in an attribute, logged, or shown in a repr; use :func:`mask`
to display it.

The keychain library is imported, and the system's keychain looked up, only when a key is
first needed: that costs a few hundred milliseconds (keyring probes every platform's
backend), which a command that never talks to Civitai (``list``, ``duplicates``) should not
pay at every start.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from civdesk.core.errors import FileProblem
from civdesk.core.secret_text import clean_api_key

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

log = logging.getLogger(__name__)

ENV_API_KEY: Final = "CIVITAI_API_KEY"
KEYRING_SERVICE: Final = "civdesk"
KEYRING_USER: Final = "civitai-api-key"
KEY_FILE_NAME: Final = "api_key"
MASK_CHAR: Final = "•"


class _Auto:
    def __repr__(self) -> str:
        return "AUTO"


AUTO: Final[Any] = _Auto()  # ApiKeyStore(keyring_backend=AUTO): use the system keychain if real


def mask(key: str | None, visible: int = 4) -> str:
    """``••••••••abcd``: enough to recognise a key, not enough to use it."""
    if not key:
        return ""
    if len(key) <= visible * 2:
        return MASK_CHAR * 8
    return MASK_CHAR * 8 + key[-visible:]


def usable_backend(backend: KeyringBackend) -> bool:
    """True for a keychain that really stores secrets (not the fail/null/empty-chain ones,
    nor a plaintext file no safer than our own)."""
    return keychain_refusal(backend) is None


#: keyring backends from keyrings.alt keep the key in a file (plaintext, or encrypted with
#: a password asked on a terminal a window does not have): our 0600 file does as well.
_FILE_BACKENDS = "keyrings.alt"


def keychain_refusal(backend: KeyringBackend) -> str | None:
    """Why ``backend`` is not used as the keychain, in words; None when it is used.

    On Windows keyring picks the Credential Locker, on macOS the Keychain, on Linux the
    Secret Service (GNOME Keyring, KWallet); these are used. Its placeholders (``fail``
    when it found none, ``null`` when turned off) and plaintext file backends are not.
    """
    from keyring.backends import chainer, fail, null

    name = type(backend).__name__
    if isinstance(backend, fail.Keyring):
        return "no system keychain was found"
    if isinstance(backend, null.Keyring):
        return "the system keychain is turned off (keyring's null backend)"
    if type(backend).__module__.startswith(_FILE_BACKENDS):
        return (f"the only keychain found, keyrings.alt's {name}, keeps keys in a file no "
                "safer than civdesk's own")
    if isinstance(backend, chainer.ChainerBackend):
        chained = list(backend.backends)
        # The chain stores a key in its first backend: that one decides.
        return keychain_refusal(chained[0]) if chained else "no system keychain was found"
    try:
        usable = float(backend.priority) > 0
    except Exception:  # a third-party backend whose priority check itself fails
        usable = False
    return None if usable else f"the keychain found ({name}) cannot be used here"


class ApiKeyStore:
    """Reads, stores and forgets the API key.

    ``keyring_backend``: ``AUTO`` (the system's keychain when a real one exists), a
    ``KeyringBackend`` to use, or ``None`` to use only the file (tests, portable installs).
    """

    def __init__(self, config_dir: str | os.PathLike[str], keyring_backend: Any = AUTO) -> None:
        self._file = Path(config_dir) / KEY_FILE_NAME
        self._backend_choice: Any = keyring_backend  # AUTO: looked up at first use
        self._refusal: str | None = None  # why AUTO found no keychain to use

    @property
    def _keyring(self) -> KeyringBackend | None:
        if self._backend_choice is AUTO:
            import keyring

            candidate = keyring.get_keyring()
            self._refusal = keychain_refusal(candidate)
            self._backend_choice = candidate if self._refusal is None else None
            if self._refusal is not None:
                log.info("The API key is kept in %s: %s", self._file, self._refusal)
        backend: KeyringBackend | None = self._backend_choice
        return backend

    def __repr__(self) -> str:
        choice = self._backend_choice
        where = ("keychain, not looked up yet" if choice is AUTO else
                 type(choice).__name__ if choice is not None else str(self._file))
        return f"ApiKeyStore({where})"

    @property
    def file(self) -> Path:
        return self._file

    @property
    def uses_keychain(self) -> bool:
        return self._keyring is not None

    @property
    def keychain_note(self) -> str | None:
        """Why the key goes to the file and not a keychain, with where (None when a
        keychain is used, or the file was chosen on purpose)."""
        if self._keyring is not None or self._refusal is None:
            return None
        return f"{self._refusal}: the key is kept in {self._file}, readable by you only"

    @property
    def source(self) -> str | None:
        """Where :meth:`get` finds the key: "environment", "keychain", "file" or None."""
        if os.environ.get(ENV_API_KEY, "").strip():
            return "environment"
        if self._from_keychain():
            return "keychain"
        if self._from_file():
            return "file"
        return None

    def get(self) -> str | None:
        """The key to use now, or None when there is none."""
        env = clean_api_key(os.environ.get(ENV_API_KEY), f"The {ENV_API_KEY} variable")
        return env or self._from_keychain() or self._from_file()

    def set(self, key: str) -> None:
        """Store ``key`` (an empty one clears). Raises FileProblem if it cannot be saved,
        InvalidApiKey if it holds a character no key has."""
        key = clean_api_key(key) or ""
        if not key:
            self.clear()
            return
        if self._keyring is not None:
            try:
                self._keyring.set_password(KEYRING_SERVICE, KEYRING_USER, key)
            except Exception as exc:  # locked or broken keychain: fall back to the file
                log.warning("The keychain refused the API key (%s); using the key file",
                            type(exc).__name__)
            else:
                self._remove_file()  # no second, stale copy
                return
        self._write_file(key)

    def clear(self) -> None:
        """Forget the stored key (an environment override stays for this session)."""
        if self._keyring is not None:
            with contextlib.suppress(Exception):  # nothing stored, or a locked keychain
                self._keyring.delete_password(KEYRING_SERVICE, KEYRING_USER)
        self._remove_file()

    # ------------------------------------------------------------------------ internals

    def _from_keychain(self) -> str | None:
        if self._keyring is None:
            return None
        try:
            value = self._keyring.get_password(KEYRING_SERVICE, KEYRING_USER)
        except Exception as exc:
            log.warning("Could not read the API key from the keychain (%s)", type(exc).__name__)
            return None
        return clean_api_key(value, "The API key in the keychain")

    def _from_file(self) -> str | None:
        try:
            text = self._file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("Could not read %s (%s)", self._file, type(exc).__name__)
            return None
        return clean_api_key(text, f"The API key in {self._file}")

    def _write_file(self, key: str) -> None:
        """Write atomically; the file is created 0600, so it is never readable by others."""
        tmp = self._file.with_name(f".{KEY_FILE_NAME}.{os.getpid()}.tmp")
        try:
            self._file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(key)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._file)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise FileProblem(
                f"Could not save the API key to {self._file}: {exc.strerror or exc}"
            ) from exc

    def _remove_file(self) -> None:
        try:
            self._file.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise FileProblem(
                f"Could not delete the API key file {self._file}: {exc.strerror or exc}"
            ) from exc
