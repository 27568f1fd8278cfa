"""User errors: mistakes the user can fix, told in one line.

A tool (``run_tool`` of tools/_tool.py) ends a :class:`UserError` with one line on
stderr, ``error: <message>``, and exit code 2, without a traceback (``--debug`` or
``FUNDUS_DEBUG=1`` shows it). Anything else raised is a bug and keeps its traceback.

A user error is a missing or damaged input file, a checkpoint of another model, a bad
option or config key, a refused input, a folder in use by another run, a full disk. Its
message names what is wrong, where (the file, line, key or folder), and what to do.

Each class below also derives from the built-in exception that the same mistake raised
before (``ValueError``, ``KeyError``, ``FileNotFoundError`` ...), so code and tests that
catch those still do.
"""
from __future__ import annotations

import errno as _errno


class UserError(Exception):
    """A mistake of the user's (see the module docstring)."""


class UserValueError(UserError, ValueError):
    """A refused input or option value."""


class UserKeyError(UserError, KeyError):
    """An unknown or misplaced config key. Unlike KeyError, its text is the message
    itself, not the message's repr."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class UserFileNotFoundError(UserError, FileNotFoundError):
    """An input file or folder that is not there."""


class UserFileExistsError(UserError, FileExistsError):
    """An output that is there already and may not be replaced."""


class WrongCheckpoint(UserValueError):
    """A checkpoint of another model (or of the same model with other settings) than the
    one the config builds."""


class FolderLocked(UserError, RuntimeError):
    """A work dir or output folder in use by another live run (:mod:`.locks`)."""


class DiskFull(UserError, OSError):
    """No space left on the device (or quota) while writing ``path``."""

    def __init__(self, path, detail: str = ''):
        import shutil
        from pathlib import Path
        path = Path(path)
        where = path if path.exists() else path.parent
        try:
            free = shutil.disk_usage(where).free
            free_text = f'{free / 1e9:.2f} GB free there'
        except OSError:
            free_text = 'free space unknown'
        message = (f'{path}: the disk is full (no space left on the device: {free_text})'
                   f'{"; " + detail if detail else ""}; free some space or write to '
                   f'another disk, then run again')
        super().__init__(_errno.ENOSPC, message, str(path))
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return (_rebuild_disk_full, (self.filename, self.message))


def _rebuild_disk_full(path, message):
    err = DiskFull.__new__(DiskFull)
    OSError.__init__(err, _errno.ENOSPC, message, path)
    err.message = message
    return err


#: errno values that mean the device (or the user's quota) is full.
FULL = (_errno.ENOSPC, getattr(_errno, 'EDQUOT', _errno.ENOSPC))


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is an OSError of a full device or quota."""
    return isinstance(exc, OSError) and exc.errno in FULL


def one_line(exc: BaseException) -> str:
    """The exception's message on one line."""
    text = str(exc).strip() or type(exc).__name__
    return ' '.join(part.strip() for part in text.splitlines() if part.strip())


def write_file(path, data: bytes) -> None:
    """Write ``data`` to ``path``; a full disk is a :class:`DiskFull` naming the path
    (numpy's ``tofile`` and a buffered ``write`` say neither)."""
    try:
        with open(path, 'wb') as f:
            f.write(data)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(path, f'writing {len(data)} bytes failed') from exc
        raise

