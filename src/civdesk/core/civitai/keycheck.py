"""Ask Civitai whether an API key works, with an answer every front end words the same.

Used where a key is entered (``config set-key``, the Settings field, the key dialog). A
check that cannot reach Civitai is not a refusal: the key is kept and said to be unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.civitai.errors import KEY_PAGE, CivitaiError

#: One retry: a person waits for the answer, and a dead network should say so quickly.
CHECK_RETRIES = 1


@dataclass(frozen=True)
class KeyCheck:
    """``accepted`` is True or False as Civitai answered, None when it could not be asked."""

    accepted: bool | None
    reason: str = ""  # why it could not be checked

    @property
    def message(self) -> str:
        if self.accepted:
            return "Civitai accepted the key."
        if self.accepted is False:
            return (f"Civitai refused this key: it is mistyped, expired or revoked — create a "
                    f"new one on {KEY_PAGE}.")
        return f"The key could not be checked ({self.reason.rstrip('.')})."


def check_api_key(api_base: str, key: str, *, timeout: tuple[float, float] = (10, 30)) -> KeyCheck:
    """One request with ``key`` to ``api_base`` (network; call it off the GUI thread)."""
    client = CivitaiClient(api_base, key, timeout=timeout, max_retries=CHECK_RETRIES,
                           max_backoff=2.0)
    try:
        return KeyCheck(client.check_key())
    except CivitaiError as exc:
        return KeyCheck(None, str(exc))
    finally:
        client.close()
