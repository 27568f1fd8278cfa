"""Lesion inpainting: paint lesions into real fundus images from their label maps."""
from .generator import SPADEInpaintGenerator
from .grid_hook import InpaintGridHook
from .holes import DEFAULT_RANDOM_HOLE, LesionHoles, dilate, disk_kernel, field_of_view
from .inpaint_gan import SPADEInpaintGAN, hole_l1_loss, region_hinge_d_loss, region_hinge_g_loss

__all__ = ['SPADEInpaintGenerator', 'InpaintGridHook', 'DEFAULT_RANDOM_HOLE', 'LesionHoles',
           'dilate', 'disk_kernel', 'field_of_view', 'SPADEInpaintGAN', 'hole_l1_loss',
           'region_hinge_d_loss', 'region_hinge_g_loss']
