from .architecture import SPADE, SPADEResnetBlock
from .discriminator import MultiscaleDiscriminator
from .generator import SPADEEncoder, SPADEGenerator
from .losses import VGGPerceptualLoss
from .spade_gan import SPADEGAN, od_edges, onehot_from_labels

__all__ = ['SPADE', 'SPADEResnetBlock', 'MultiscaleDiscriminator', 'SPADEEncoder',
           'SPADEGenerator', 'VGGPerceptualLoss', 'SPADEGAN', 'od_edges', 'onehot_from_labels']
