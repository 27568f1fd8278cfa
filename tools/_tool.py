"""What the command-line tools share, kept light so that ``--help`` answers at once:
argument types that name what they expected, the options several tools have, a quiet
start, a clean stop on Ctrl-C, and user errors in one line (:func:`run_tool`).

Only the standard library is imported here: a tool imports mmengine, torch and
fundus_plugins inside its ``main``, after its arguments are parsed, so that ``--help``
and a bad option cost no import of the stack (``benchmarks/tool_help.py`` times it).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import traceback
import warnings
from typing import Callable, Optional, Sequence

#: Notices that the pinned stack (tools/setup_env.sh, requirements/) prints at import or
#: in every run, which say nothing a user can act on. The tools hide them at start-up
#: (:func:`quiet_start`); the library never does, and the project's own warnings are
#: never hidden. (category, module regex, message regex, why).
STACK_NOTICES = (
    (FutureWarning, r'diffusers\.',
     r'`torch\.utils\._pytree\._register_pytree_node` is deprecated',
     'diffusers 0.24 (imported by mmagic at every import of mmagic.models) calls a torch '
     'function that torch deprecated; printed twice per process, fixed only by a newer '
     'diffusers, which mmagic 1.2.0 does not support'),
    (UserWarning, r'mmseg\.models\.builder', r'``build_loss`` would be deprecated',
     "mmsegmentation 1.2.2's own decode heads call its deprecated build_loss at every "
     'model build'),
    (UserWarning, r'mmseg\.engine\.hooks\.visualization_hook', r'The draw is False',
     "mmsegmentation's SegVisualizationHook says it draws nothing: draw=False is the "
     'segmentation configs\' choice'),
)


def quiet_start() -> None:
    """Hide :data:`STACK_NOTICES` in this process (:func:`run_tool` calls it before the
    tool's ``main``; a tool's subprocesses that are tools call it themselves)."""
    for category, module, message, _why in STACK_NOTICES:
        warnings.filterwarnings('ignore', category=category, module=module, message=message)


class CfgOptions(argparse.Action):
    """``--cfg-options key=value ...``: mmengine's ``DictAction``, imported only when the
    option is given (so that ``--help`` does not import mmengine); the values are parsed
    by mmengine itself, as its own tools parse them."""

    def __call__(self, parser, namespace, values, option_string=None):
        from mmengine.config import DictAction
        DictAction(self.option_strings, self.dest, nargs=self.nargs)(
            parser, namespace, values, option_string)


def add_fov_arguments(parser) -> None:
    """The ``--fov`` and ``--fov-root`` options of the tools that sample label maps
    (resolved by :func:`fundus_plugins.apis.resolve_fov`; the choices are its modes and
    ``auto``, checked by tests/test_cli.py)."""
    parser.add_argument(
        '--fov', default='auto', choices=['auto', 'real', 'fitted', 'generated'],
        help="field of view of the maps: real (a real training map's, from --fov-root or "
             "the config's data_root), fitted (a circle fitted to the generator's), "
             "generated (the generator's argmax, the paper); auto: real when a prepared "
             'root is at hand, else fitted')
    parser.add_argument('--fov-root', help='prepared root whose training maps give the '
                                           "fields of view (default: the config's data_root)")


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
    quiet_start()
    try:
        return _run_main(main, kind, resume_flag)
    finally:
        end_process_group()


def _user_error_class():
    """fundus_plugins' UserError, if the package is imported (if it is not, nothing of it
    can have raised one)."""
    errors = sys.modules.get('fundus_plugins.errors')
    return errors.UserError if errors is not None else ()


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
    except Exception as exc:
        if isinstance(exc, _user_error_class()):
            from fundus_plugins.errors import one_line
            return _user_error(one_line(exc))
        if not isinstance(exc, OSError):
            raise
        from fundus_plugins.errors import is_disk_full
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
