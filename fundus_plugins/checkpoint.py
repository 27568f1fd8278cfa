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

A missing, empty or truncated checkpoint, and one of another model than the config builds
(:func:`check_checkpoint_fits`: which model it holds, from its meta or its keys), are user
errors (:mod:`.errors`): the tools end them with one line.

Importing :mod:`fundus_plugins` changes none of this: only the tools enter the context.
"""
from __future__ import annotations

import ast
import contextlib
import os.path as osp
import pickle
import re
import zipfile
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

from .errors import UserError, UserFileNotFoundError, UserValueError, WrongCheckpoint


class CheckpointRefused(UserError, RuntimeError):
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


def checkpoint_problem(path) -> Optional[str]:
    """Why the checkpoint file at ``path`` cannot be whole (missing, empty, not a complete
    torch zip archive, a member failing its CRC), or None. Reads the file, unpickles
    nothing."""
    path = Path(path)
    if not path.is_file():
        return 'not found'
    if path.stat().st_size == 0:
        return 'empty file'
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        return f'not a complete checkpoint archive ({exc}); truncated?'
    if bad is not None:
        return f'damaged member {bad}'
    return None


def load_checkpoint(path: str, map_location='cpu') -> dict:
    """``torch.load`` of an mmengine checkpoint with only its own types allowed; a missing
    or damaged file is an error naming it (what is wrong is worked out only when loading
    fails, so an intact file is read once)."""
    if not Path(path).is_file():
        raise UserFileNotFoundError(f'{path}: cannot load the checkpoint: not found; give '
                                    f'the path of a checkpoint (.pth) saved by training')
    try:
        with mmengine_checkpoint_globals(path):
            return torch.load(path, map_location=map_location, weights_only=True)
    except CheckpointRefused:
        raise
    except (RuntimeError, EOFError, OSError) as exc:
        problem = checkpoint_problem(path)
        if problem is None:
            raise
        raise UserValueError(f'{path}: cannot load the checkpoint: {problem}; it was cut '
                             f'short or damaged while being written or copied: copy it '
                             f'again, or use another checkpoint of its work dir') from exc


def checkpoint_model_type(ckpt: dict) -> Optional[str]:
    """The ``model.type`` of the config a checkpoint was trained with, from the config
    text mmengine keeps in its meta (read with ``ast``, nothing run); None when the meta
    does not say."""
    text = (ckpt.get('meta') or {}).get('cfg') if isinstance(ckpt, dict) else None
    if not isinstance(text, str):
        return None
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == 'model'
                                                for t in node.targets):
            value = node.value
            if isinstance(value, ast.Call):
                pairs = [(k.arg, k.value) for k in value.keywords]
            elif isinstance(value, ast.Dict):
                pairs = [(getattr(k, 'value', None), v) for k, v in zip(value.keys,
                                                                         value.values)]
            else:
                return None
            for key, v in pairs:
                if key == 'type' and isinstance(v, ast.Constant) and isinstance(v.value, str):
                    return v.value
    return None


def _a(name: str) -> str:
    return f'{"an" if name[:1].lower() in "aeiou" else "a"} {name}'


def _key_groups(keys) -> str:
    """'generator (120), discriminator (80)': the first name of each weight, counted."""
    groups = {}
    for k in keys:
        head = k.split('.', 1)[0]
        groups[head] = groups.get(head, 0) + 1
    return ', '.join(f'{g} ({n})' for g, n in sorted(groups.items(), key=lambda x: -x[1])[:6])


def check_checkpoint_fits(model_state: dict, state: dict, ckpt: dict, path, builds: str,
                          config: str = 'the config') -> None:
    """Refuse, with :class:`~.errors.WrongCheckpoint`, a checkpoint whose weights
    ``state`` do not fit the model's ``model_state`` (weights missing, extra, or of
    another shape), saying which model the checkpoint holds (from its meta, else its
    weights' names) and which one ``config`` builds (``builds``: its ``model.type``)."""
    missing = [k for k in model_state if k not in state]
    extra = [k for k in state if k not in model_state]
    shapes = [(k, tuple(state[k].shape), tuple(model_state[k].shape)) for k in model_state
              if k in state and hasattr(state[k], 'shape')
              and tuple(state[k].shape) != tuple(model_state[k].shape)]
    if not (missing or extra or shapes):
        return
    holds = checkpoint_model_type(ckpt)
    counts = (f'{len(missing)} of the model\'s {len(model_state)} weights are not in it, '
              f'{len(extra)} of its {len(state)} are not the model\'s'
              + (f', {len(shapes)} differ in shape (e.g. {shapes[0][0]}: checkpoint '
                 f'{list(shapes[0][1])}, model {list(shapes[0][2])})' if shapes else ''))
    other = (holds is not None and holds != builds) or len(missing) > len(model_state) / 2
    if other:
        what = f'{_a(holds)} (its meta says so)' if holds else \
            f'the weights of another model (named {_key_groups(state)})'
        raise WrongCheckpoint(
            f'{path}: the checkpoint is of another model: it holds {what}, but {config} '
            f'builds {_a(builds)}; {counts}. Give a checkpoint '
            f'of {_a(builds)} (trained with this config), or the config the checkpoint was '
            f'trained with')
    what = f'holds {_a(holds)} trained with other settings than' if holds else \
        f'does not fit the {builds} built by'
    raise WrongCheckpoint(
        f'{path}: the checkpoint {what} {config}: {counts}. Give the config it was trained '
        f'with (its lesion_classes, image_size, channel counts ...), or a checkpoint '
        f'trained with this config')


def _order(path: Path) -> tuple:
    numbers = re.findall(r'\d+', path.stem)
    return (int(numbers[-1]) if numbers else -1, path.stat().st_mtime)


def find_resume_checkpoint(work_dir, log: Callable = print) -> Optional[str]:
    """The newest intact checkpoint of ``work_dir``, from its own files.

    mmengine's ``last_checkpoint`` file names the latest checkpoint by the absolute path it
    had when saved: a work dir that was copied or moved would resume from the original's.
    Here the file of that name inside ``work_dir`` is used, then the other ``*.pth`` files
    newest first (by the number in the name: ``iter_6`` before ``iter_4``); a damaged one
    (truncated, empty) is passed over, saying so. None when there is none.
    """
    work = Path(work_dir)
    if not work.is_dir():
        return None
    candidates = []
    last = work / 'last_checkpoint'
    if last.is_file() and last.read_text().strip():
        named = Path(last.read_text().strip())
        own = work / named.name
        if osp.abspath(named) != osp.abspath(own):
            log(f'{last} names {named}, outside this work dir; using {own}')
        candidates.append(own)
    for path in sorted(work.glob('*.pth'), key=_order, reverse=True):
        if path not in candidates:
            candidates.append(path)
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            return str(path)
        log(f'{path}: {problem}; trying the next newest checkpoint')
    return None
