"""Generative models (registered in mmagic's MODELS)."""
from .ada_augment import AdaAugment
from .data_preprocessor import FundusDataPreprocessor
from .label_gan import LabelACGAN, LabelMapDiscriminator, LabelMapGenerator
from .spade import MultiscaleDiscriminator, SPADEGAN, SPADEEncoder, SPADEGenerator

__all__ = ['AdaAugment', 'FundusDataPreprocessor', 'LabelACGAN', 'LabelMapDiscriminator',
           'LabelMapGenerator', 'MultiscaleDiscriminator', 'SPADEGAN', 'SPADEEncoder',
           'SPADEGenerator']
