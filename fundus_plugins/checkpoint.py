"""Loading mmengine checkpoints with ``torch.load(weights_only=True)``.

Since torch 2.6 ``torch.load`` unpickles only tensors, containers and the globals a
caller allows, so a checkpoint cannot run code hidden in it. mmengine 0.10.7's
checkpoints hold a few more Python objects: the message hub's ``HistoryBuffer`` (with
numpy arrays and scalars), whose table of statistics methods pickles as
``getattr(HistoryBuffer, 'min')`` and the like. :func:`mmengine_checkpoint_globals` is a
context manager that allows exactly those, for the loads inside it; the project's tools
wrap their checkpoint loading (``--resume``, ``load_from``, :func:`~.apis.init_model`) in
it. ``getattr`` is among them: the weights-only unpickler still calls nothing that is not
on the list, so what ``getattr`` returns can be stored but never called. A checkpoint that
needs anything else is refused with :class:`CheckpointRefused`, which names the file and
the global; nothing falls back to unsafe loading.

Importing :mod:`fundus_plugins` changes none of this: only the tools enter the context.
"""
from __future__ import annotations

import contextlib
import pickle
import re
from typing import Iterator, Optional

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer


class CheckpointRefused(RuntimeError):
    """A checkpoint holds an object the weights-only loader does not allow."""


def mmengine_checkpoint_types() -> list:
    """The globals an mmengine 0.10.7 checkpoint needs beyond torch's defaults."""

    # numpy 2 keeps multiarray under numpy._core (numpy.core is a deprecated alias).
    core = np._core if hasattr(np, '_core') and hasattr(np._core, 'multiarray') else np.core
    multiarray = core.multiarray
    types = [HistoryBuffer, getattr, np.ndarray, np.dtype, multiarray._reconstruct,
             multiarray.scalar]
    # numpy >= 1.25 pickles dtypes by their class (numpy.dtypes.Float64DType, ...).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        types += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return types


@contextlib.contextmanager
def mmengine_checkpoint_globals(path: Optional[str] = None) -> Iterator[None]:
    """Allow an mmengine checkpoint's types for the ``torch.load`` calls inside; turn a
    refusal into :class:`CheckpointRefused` naming ``path`` (when given) and the global."""
    try:
        with torch.serialization.safe_globals(mmengine_checkpoint_types()):
            yield
    except pickle.UnpicklingError as exc:
        raise refused(exc, path) from None


def refused(exc: Exception, path: Optional[str] = None) -> CheckpointRefused:
    text = str(exc)
    found = re.search(r'GLOBAL (\S+) was not an allowed global', text) or \
        re.search(r"but got <class '([^']+)'>", text)
    what = found.group(1) if found else 'an object'
    where = f'{path}: ' if path else ''
    return CheckpointRefused(
        f'{where}refused to load the checkpoint: it holds {what}, which is not among the '
        f'types an mmengine checkpoint holds (fundus_plugins.checkpoint). Unpickling it '
        f'could run code; if you trust the file and need it, load it yourself with '
        f'torch.load(..., weights_only=False) and save its state_dict.')


def load_checkpoint(path: str, map_location='cpu') -> dict:
    """``torch.load`` of an mmengine checkpoint with only its own types allowed."""
    with mmengine_checkpoint_globals(path):
        return torch.load(path, map_location=map_location, weights_only=True)
