"""Exceptions and warnings raised by weightwidget.

Every error names what was wrong and, where there is one, the fix.
"""

from __future__ import annotations

__all__ = [
    "FilterError",
    "NothingChangedWarning",
    "ReadOnlyTableError",
    "StoreCorruptedError",
    "StoreCorruptionWarning",
    "StoreError",
    "StoreExistsError",
    "StoreFormatError",
    "StoreLockTimeout",
    "StoreMismatchError",
    "StoreWriteWarning",
    "UndoConflictError",
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


class StoreWriteWarning(UserWarning):
    """A revision was committed, but a file written after it failed.

    The snapshot, the history chunk or the ``HEAD`` hint: the store stays correct,
    only slower to open until the next one is written.
    """


class ReadOnlyTableError(StoreError):
    """The table was opened at a past revision and cannot be edited.

    ``open(path, revision=r)`` is read-only; open it without ``revision=`` to edit
    the newest revision.
    """


class UndoConflictError(StoreError, ValueError):
    """Undo or redo would overwrite rows that a later revision changed.

    Attributes
    ----------
    revision : int
        The later revision that changed those rows.
    rows : list of int
        Up to ten of the rows in conflict.
    """

    def __init__(self, message: str, *, revision: int, rows: list[int]) -> None:
        self.revision = revision
        self.rows = rows
        super().__init__(message)


class NothingChangedWarning(UserWarning):
    """An undo, redo or revert would change no row, so no revision was committed."""
