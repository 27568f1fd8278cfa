"""Generative models (registered in mmagic's MODELS)."""
from .ada_augment import AdaAugment
from .data_preprocessor import LabelMapPreprocessor
from .label_gan import LabelACGAN, LabelMapDiscriminator, LabelMapGenerator

__all__ = ['AdaAugment', 'LabelMapPreprocessor', 'LabelACGAN', 'LabelMapDiscriminator',
           'LabelMapGenerator']
