"""Training hooks (registered in mmagic's HOOKS) and the GAN configs' train loop (mmengine's
LOOPS)."""
from .ada_hook import AdaHook, ada_update
from .label_grid_hook import LabelGridHook, label_grid
from .loops import FastResumeIterBasedTrainLoop
from .spade_grid_hook import TranslationGridHook
from .step_ratio_hook import GANStepRatioHook

__all__ = ['AdaHook', 'ada_update', 'FastResumeIterBasedTrainLoop', 'LabelGridHook',
           'label_grid', 'GANStepRatioHook', 'TranslationGridHook']
