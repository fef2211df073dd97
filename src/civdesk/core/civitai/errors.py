"""Typed failures of the Civitai API, told apart the way users need them told apart."""

from __future__ import annotations

from civdesk.core.errors import CivdeskError


class CivitaiError(CivdeskError):
    """A request to Civitai failed. ``status`` is the HTTP status, or None without one."""

    def __init__(self, message: str, status: int | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class NetworkError(CivitaiError):
    """No answer: the network is down, the host unknown, or the connection timed out."""

    transient = True


class AuthRequired(CivitaiError):
    """401: no API key, a wrong one, or the creator requires a logged-in download."""


class KeyRefused(AuthRequired):
    """401 although a key was sent: Civitai no longer accepts it (expired or revoked)."""


class KeyNeeded(AuthRequired):
    """A download was about to start without an API key; nothing was asked of Civitai."""


#: Where a person creates an API key, in the words of Civitai's own pages.
KEY_PAGE = "civitai.com → Account settings → API keys"
KEY_PAGE_URL = "https://civitai.com/user/account"


def require_download_key(api_key: str | None) -> None:
    """Civitai's docs require a token for every download (April 2026): ask for the key
    before the first download instead of failing on the first 401."""
    if not (api_key or "").strip():
        raise KeyNeeded(f"Civitai requires an API key for every download — create one on "
                        f"{KEY_PAGE}", status=None)


class EarlyAccess(CivitaiError):
    """403 with a deadline: the version is in early access until then."""

    def __init__(self, message: str, deadline: str | None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.deadline = deadline


class Forbidden(CivitaiError):
    """403 without a deadline."""


class NotFound(CivitaiError):
    """404: the id, hash or file is unknown to Civitai (or was removed)."""


class Archived(CivitaiError):
    """410: the model is archived and no longer downloadable."""


class RateLimited(CivitaiError):
    """429 (or a 503 with Retry-After): slow down."""

    transient = True

    def __init__(self, message: str, retry_after: float | None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ServerError(CivitaiError):
    """5xx after the retries ran out."""

    transient = True


class MalformedResponse(CivitaiError):
    """The answer was not the JSON the API documents."""
