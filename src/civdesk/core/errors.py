"""The failures civdesk expects, each with a message a person can act on.

Every expected failure derives from :class:`CivdeskError`; its ``str()`` is one line fit for
a status bar, a dock row or stderr. Anything else reaching the top is a bug.
"""

from __future__ import annotations


class CivdeskError(Exception):
    """An expected failure. ``str(err)`` is the user-facing message."""

    #: True when trying again later may succeed (network, 429, 5xx, truncated body).
    transient = False


class FileProblem(CivdeskError):
    """A local file or folder could not be read or written."""


class DiskFull(FileProblem):
    """Not enough free space for a download."""


class UnsafePath(FileProblem):
    """A path (often a filename from the server) would leave its folder."""


class PartInUse(FileProblem):
    """Another program (another civdesk, whatever its data folder) holds the lock of the
    ``.part`` this download would write."""

    def __init__(self, part: str, name: str, folder: str) -> None:
        super().__init__(f"Another program is downloading {name} into {folder} right now; "
                         "try again when it has finished")
        self.part = part


class HashMismatch(CivdeskError):
    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(
            f"The downloaded file is corrupt: its SHA256 {actual[:12]}… does not match "
            f"Civitai's {expected[:12]}…; the partial file was discarded, retry the download"
        )
        self.path = path
        self.expected = expected
        self.actual = actual


class Cancelled(CivdeskError):
    def __init__(self, what: str = "Operation") -> None:
        super().__init__(f"{what} cancelled")
