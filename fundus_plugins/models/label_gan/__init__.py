from .acgan import LabelACGAN, label_maps_from_probs
from .fov import FOV_MODES, RealFovPool, maps_with_fov
from .losses import disc_fake_loss, disc_real_loss, gen_loss
from .networks import LabelMapDiscriminator, LabelMapGenerator

__all__ = ['LabelACGAN', 'label_maps_from_probs', 'FOV_MODES', 'RealFovPool', 'maps_with_fov', 'disc_fake_loss', 'disc_real_loss',
           'gen_loss', 'LabelMapDiscriminator', 'LabelMapGenerator']
