"""Generative models (registered in mmagic's MODELS)."""
from .ada_augment import AdaAugment
from .data_preprocessor import FundusDataPreprocessor
from .inpaint import InpaintGridHook, SPADEInpaintGAN, SPADEInpaintGenerator
from .label_gan import LabelACGAN, LabelMapDiscriminator, LabelMapGenerator
from .spade import MultiscaleDiscriminator, SPADEGAN, SPADEEncoder, SPADEGenerator

__all__ = ['AdaAugment', 'FundusDataPreprocessor', 'InpaintGridHook', 'LabelACGAN',
           'LabelMapDiscriminator', 'LabelMapGenerator', 'MultiscaleDiscriminator', 'SPADEGAN',
           'SPADEEncoder', 'SPADEGenerator', 'SPADEInpaintGAN', 'SPADEInpaintGenerator']
