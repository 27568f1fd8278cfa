"""Training hooks (the GAN hooks registered in mmagic's HOOKS), the GAN configs' train loop
(mmengine's LOOPS), and the console of a run: a progress bar hook and a runner whose console
shows warnings only (mmengine's root HOOKS and RUNNERS, found from any scope)."""
from .ada_hook import AdaHook, ada_update
from .label_grid_hook import LabelGridHook, label_grid
from .loops import FastResumeIterBasedTrainLoop
from .precision import (ChannelsLastHook, PrecisionOptimWrapper, bf16_supported,
                        resolve_precision)
from .progress_hook import (HeldLog, ProgressBarHook, QuietConsoleRunner, log_file,
                            quiet_console, show_progress, use_quiet_runner)
from .random_state_hook import (RandomStateHook, capture_random_states,
                                restore_random_states)
from .spade_grid_hook import TranslationGridHook
from .step_ratio_hook import GANStepRatioHook

__all__ = ['AdaHook', 'bf16_supported', 'ChannelsLastHook', 'PrecisionOptimWrapper',
           'resolve_precision', 'ada_update', 'HeldLog', 'FastResumeIterBasedTrainLoop', 'LabelGridHook',
           'label_grid', 'GANStepRatioHook', 'log_file', 'ProgressBarHook',
           'quiet_console', 'QuietConsoleRunner', 'RandomStateHook', 'capture_random_states',
           'restore_random_states', 'show_progress', 'TranslationGridHook',
           'use_quiet_runner']
