"""fundus_plugins: synthetic DR fundus images with lesion labels, as OpenMMLab plugins.

Importing the package applies the stack's compatibility fixes (see :mod:`.compat`) and
registers every component in the registry of the library that builds it.
"""
from . import compat

compat.apply_all()

from . import datasets, engine, evaluation, models, segmentation  # noqa: E402,F401
# (importing them registers the components)
from .classes import (ClassSet, DEFAULT_CLASSES, get_lesion_class,  # noqa: E402
                      register_lesion_class, registered_classes)

__version__ = '0.1.0'
__all__ = ['ClassSet', 'DEFAULT_CLASSES', 'get_lesion_class', 'register_lesion_class',
           'registered_classes', '__version__']
