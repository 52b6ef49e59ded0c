"""Exceptions and warnings raised by weightwidget.

Every error names what was wrong and, where there is one, the fix.
"""

from __future__ import annotations

__all__ = [
    "FilterError",
    "StoreCorruptedError",
    "StoreCorruptionWarning",
    "StoreError",
    "StoreExistsError",
    "StoreFormatError",
    "StoreLockTimeout",
    "StoreMismatchError",
]


class FilterError(ValueError):
    """A filter string could not be parsed or refers to an unknown column.

    Attributes
    ----------
    text : str
        The filter text as given.
    position : int
        0-based character offset of the problem in ``text``.
    """

    def __init__(self, message: str, *, text: str, position: int) -> None:
        self.text = text
        self.position = position
        self.reason = message
        pointer = ""
        if text and "\n" not in text and len(text) <= 200:
            pointer = f"\n    {text}\n    {' ' * position}^"
        super().__init__(f"{message} at position {position}{pointer}")


class StoreError(RuntimeError):
    """A revision store could not be read or written."""


class StoreFormatError(StoreError):
    """The store was written by a newer (or unknown) format version."""


class StoreCorruptedError(StoreError):
    """A file of the store is truncated or fails its checksum.

    Attributes
    ----------
    path : str
        The file that is damaged.
    """

    def __init__(self, message: str, *, path: str) -> None:
        self.path = path
        super().__init__(message)


class StoreCorruptionWarning(UserWarning):
    """A damaged file was skipped; the table opened at the last good revision."""


class StoreExistsError(StoreError, FileExistsError):
    """A store already exists where ``if_exists="error"`` asked for a new one."""


class StoreMismatchError(StoreError, ValueError):
    """A store with this name holds different data than the one given."""


class StoreLockTimeout(StoreError, TimeoutError):
    """Another process held the store's writer lock for too long."""
