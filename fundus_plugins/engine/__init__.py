"""Training hooks (registered in mmagic's HOOKS)."""
from .ada_hook import AdaHook, ada_update
from .label_grid_hook import LabelGridHook, label_grid
from .spade_grid_hook import TranslationGridHook
from .step_ratio_hook import GANStepRatioHook

__all__ = ['AdaHook', 'ada_update', 'LabelGridHook', 'label_grid', 'GANStepRatioHook',
           'TranslationGridHook']
