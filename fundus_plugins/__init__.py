"""fundus_plugins: synthetic DR fundus images with lesion labels, as OpenMMLab plugins.

Importing the package registers every component in the registry of the library that
builds it, and changes nothing else in the process: the tools apply what the pinned stack
needs where they need it (safe checkpoint loading, :mod:`.checkpoint`; CPU processes for
mmengine's distributed launcher, :mod:`.compat`).
"""
from . import datasets, engine, evaluation, models, segmentation  # noqa: F401
# (importing them registers the components)
from .classes import (ClassSet, DEFAULT_CLASSES, get_lesion_class,  # noqa: E402
                      register_lesion_class, registered_classes)

__version__ = '0.1.0'
__all__ = ['ClassSet', 'DEFAULT_CLASSES', 'get_lesion_class', 'register_lesion_class',
           'registered_classes', '__version__']
