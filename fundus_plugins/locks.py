"""One folder, one run: an OS lock on a work dir or an output folder.

:func:`folder_lock` takes ``fcntl.flock`` on a lock file (by default ``<folder>/.lock``)
for as long as a run writes there. The lock belongs to the open file, so it ends with the
process however the process ends: a run killed with ``kill -9`` (or a crash, or a machine
reboot) leaves a lock file that blocks nothing. A second run on a locked folder is
refused at once with :class:`~.errors.FolderLocked`, which names the folder and the
process that holds it (PID, host, start time, command, written into the lock file by the
holder). Within one process the lock is re-entrant: a pipeline that holds its work dir
may lock it again in a step.

Where the lock files are (see :mod:`fundus_plugins.datasets.prepare` for outputs):
``tools/train.py`` its work dir, ``tools/run_pipeline.py`` the pipeline's work dir, the
ablation its work dir and each run its run folder (a parallel run in its worker process),
and every tool that writes a dataset ``<parent>/.<name>.lock`` beside its output (the
output itself is swapped in whole at the end).

What the lock cannot promise: ``flock`` is honoured by local file systems and, on Linux,
by NFS (as an fcntl lock through the NFS lock manager); on a shared file system that does
not honour it (some CIFS / SMB mounts, Lustre mounted without ``flock``), two machines can
both take it, and only runs on the same machine stop each other. Where the file system
refuses ``flock`` outright, the run goes on unlocked and says so.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import threading
import warnings
from pathlib import Path
from typing import Iterator, Optional, Union

from .errors import FolderLocked

PathLike = Union[str, Path]
#: The lock file of a work dir.
LOCK_NAME = '.lock'

_held: dict = {}  # resolved lock-file path -> [fd, depth]
_guard = threading.Lock()


def holder_info() -> dict:
    """What the lock file says about the process that holds it."""
    return {'pid': os.getpid(), 'host': socket.gethostname(),
            'started': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
            'command': ' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}


def read_holder(lock_file: PathLike) -> Optional[dict]:
    """The holder recorded in ``lock_file``, or None when it says nothing readable."""
    try:
        return json.loads(Path(lock_file).read_text())
    except (OSError, ValueError):
        return None


def describe_holder(info: Optional[dict]) -> str:
    if not info:
        return 'a process that has not yet recorded itself'
    return (f"process {info.get('pid')} on {info.get('host')}, started "
            f"{info.get('started')}, command: {info.get('command')}")


def _key(lock_file: Path) -> str:
    return os.path.join(os.path.realpath(lock_file.parent), lock_file.name)


def held_here(folder: PathLike, lock_file: Optional[PathLike] = None) -> bool:
    """Whether this process holds the lock of ``folder`` (its ``lock_file``)."""
    return _key(Path(lock_file or Path(folder) / LOCK_NAME)) in _held


def _acquire(lock_file: Path, folder: Path, what: str) -> Optional[int]:
    """Open and lock ``lock_file``; the fd, or None where the file system refuses
    flock. The file of a lock that was released (and its file removed) while we waited
    is not ours: we lock the file now at the path, or are refused."""
    for _ in range(20):
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = read_holder(lock_file)
            raise FolderLocked(
                f'{folder}: in use by another run ({describe_holder(holder)}); {what} '
                f'writes there, and two runs would mix their work. Wait for it to end, '
                f'stop it, or choose another folder (the lock, {lock_file}, ends with '
                f'its process)') from None
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                warnings.warn(f'{lock_file}: this file system does not lock files '
                              f'(flock: {exc.strerror}); a second run on {folder} would '
                              f'not be stopped')
                return None
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_file).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # released and removed under us: take the new file
    raise RuntimeError(f'{lock_file}: could not take the lock (the file kept changing)')


@contextlib.contextmanager
def folder_lock(folder: PathLike, what: str = 'this run',
                lock_file: Optional[PathLike] = None) -> Iterator[Path]:
    """Hold the lock of ``folder`` for the block; yields the folder.

    The lock file is ``lock_file``, by default ``<folder>/.lock`` (the folder and its
    parents are made when missing; an output swapped in whole is locked by a file beside
    it, :func:`output_lock_file`). Refused at once with
    :class:`~.errors.FolderLocked` naming the holder when another process holds it;
    re-entrant within this process. The lock file records this process (PID, host, start
    time, command) and is removed when the lock is released.
    """
    folder = Path(folder)
    lock_file = Path(lock_file) if lock_file is not None else folder / LOCK_NAME
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    key = _key(lock_file)
    with _guard:
        if key in _held:
            _held[key][1] += 1
            fd = -1
        else:
            fd = _acquire(lock_file, folder, what)
            if fd is not None:
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(holder_info()) + '\n').encode(), 0)
            _held[key] = [fd, 1]
    try:
        yield folder
    finally:
        with _guard:
            entry = _held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                if entry[0] is not None:
                    # Removed while still held: a process that opened the old file
                    # sees it is gone (the inode check in _acquire) and takes a new one.
                    with contextlib.suppress(OSError):
                        os.unlink(lock_file)
                    os.close(entry[0])


def output_lock_file(out: PathLike) -> Path:
    """The lock file of an output folder that is swapped in whole: ``.<name>.lock``
    beside it (the folder itself is replaced at the end)."""
    out = Path(out)
    return out.parent / f'.{out.name}.lock'


#: The environment variable that holds a process's rank, by mmengine launcher.
RANK_VARIABLES = {'pytorch': 'RANK', 'slurm': 'SLURM_PROCID', 'mpi': 'OMPI_COMM_WORLD_RANK'}


def launch_rank(launcher: Optional[str]) -> int:
    """This process's rank under ``launcher`` (0 when not distributed), read from the
    environment the launcher sets, before any process group exists."""
    name = RANK_VARIABLES.get(launcher or 'none')
    return int(os.environ.get(name, 0) or 0) if name else 0


def run_lock(folder: PathLike, what: str, launcher: Optional[str] = None):
    """:func:`folder_lock` of a run's work dir, taken by rank 0 only (the other processes
    of a distributed run share its work dir)."""
    if launch_rank(launcher) != 0:
        return contextlib.nullcontext(Path(folder))
    return folder_lock(folder, what)
