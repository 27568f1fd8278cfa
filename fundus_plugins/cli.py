"""What the command-line tools share: argument types that name what they expected, a
clean stop on Ctrl-C, and user errors in one line (:func:`run_tool`)."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import traceback
from typing import Callable, Optional, Sequence

from .errors import UserError, is_disk_full, one_line

#: Set to 1 (or pass --debug) to see the traceback of a user error.
DEBUG_ENV = 'FUNDUS_DEBUG'


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a whole number, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number, got {text!r}') from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f'must be greater than 0, got {text}')
    return value


def batch_size_arg(text: str):
    """argparse type of --batch-size: 'auto' (32 on CUDA, 8 on the CPU) or a whole number
    >= 1."""
    if text == 'auto':
        return text
    try:
        int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number, got {text!r}") \
            from None
    return positive_int(text)


def threads_arg(text: str):
    """argparse type of --workers / --writers: 'auto' or a whole number >= 0."""
    if text == 'auto':
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number, got {text!r}") \
            from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be at least 0, got {value}')
    return value


#: --writers of the translating tools.
WRITERS_HELP = ('threads that encode and write the PNG pairs while the next batch is '
                'translated (auto: all CPUs but two, at most 16, on CUDA; 0 on the CPU: '
                'written in the main thread)')


#: What an interrupted tool has kept, by kind of tool (see :func:`run_tool`).
SAVED = {
    'train': 'the checkpoints written so far are in the work dir',
    'pipeline': 'finished stages are kept, and a stage that trains keeps its checkpoints',
    'atomic': 'nothing was written: the output folder is as it was before',
    'ablation': 'finished runs are kept (rerunning skips them), and the run that was '
                'training keeps its checkpoints',
    'none': 'nothing was written',
}


def resume_command(argv: Sequence[str], add: Optional[str] = None) -> str:
    """The command line that ran, with ``add`` (e.g. ``--resume``) when it is missing."""
    args = list(argv)
    if add and add not in args:
        args.append(add)
    return ' '.join(shlex.quote(a) for a in ['python', *args])


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    """The tools' ``--debug``: a user error shows its traceback (:func:`run_tool`)."""
    parser.add_argument('--debug', action='store_true',
                        help=f'show the traceback of an error about the input or the '
                             f'options (also: {DEBUG_ENV}=1)')


def debug_requested(argv: Optional[Sequence[str]] = None) -> bool:
    """``--debug`` on the command line or ``FUNDUS_DEBUG`` set to a true value."""
    argv = sys.argv[1:] if argv is None else argv
    return '--debug' in argv or os.environ.get(DEBUG_ENV, '').strip().lower() in (
        '1', 'true', 'yes', 'on')


def run_tool(main: Callable[[], int], kind: str, resume_flag: Optional[str] = None) -> int:
    """Run a tool's ``main``.

    On Ctrl-C: one line saying what was kept and the command that goes on, and 130 (the
    shell's code for SIGINT). On a user error (:class:`~.errors.UserError`, a full disk,
    or ``SystemExit`` with a message, the tools' own refusals): one line
    ``error: <message>`` on stderr and 2, the traceback only with ``--debug`` or
    ``FUNDUS_DEBUG=1``. Anything else is a bug: its traceback, as Python prints it.

    A process group that ``main`` started (``--launcher pytorch``) is destroyed before
    the process exits, however ``main`` ends.
    """
    try:
        return _run_main(main, kind, resume_flag)
    finally:
        end_process_group()


def _run_main(main: Callable[[], int], kind: str, resume_flag: Optional[str]) -> int:
    try:
        return main()
    except KeyboardInterrupt as exc:
        saved = getattr(exc, 'saved', None) or SAVED[kind]  # set where SAVED's is not true
        print(f'\ninterrupted: {saved}; to go on, run: '
              f'{resume_command(sys.argv, resume_flag)}', file=sys.stderr)
        return 130
    except SystemExit as exc:
        if not isinstance(exc.code, str):  # argparse and sys.exit(n): as they were
            raise
        return _user_error(exc.code)
    except UserError as exc:
        return _user_error(one_line(exc))
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        where = exc.filename or 'a file of the output'
        return _user_error(f'{where}: the disk is full (no space left on the device); '
                           f'free some space or write to another disk, then run again')


def end_process_group() -> None:
    """Destroy the default process group, if this process started one.

    mmengine's Runner initialises it and never destroys it. Left to the interpreter's
    exit, gloo's worker threads can still hold work with Python references while the
    interpreter is torn down, and the process can die of SIGABRT ("terminate called
    without an active exception") after its work is done: a dist_test.sh run then fails
    at random (seen once in CI, torch 2.14).
    """
    dist = sys.modules.get('torch.distributed')
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _user_error(message: str) -> int:
    if debug_requested():
        traceback.print_exc()
    print(f'error: {message}', file=sys.stderr, flush=True)
    return 2
