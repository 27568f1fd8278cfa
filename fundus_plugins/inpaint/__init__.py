"""Lesions painted into real healthy fundus photographs (beside whole-image synthesis).

:mod:`.placement` makes the composite's label map: lesion maps (from the label ACGAN or
real maps of other images) placed on a real grade-0 image's own disc and field of view.
"""
from .placement import (DEFAULT_PLACEMENT_RULES, Placement, PlacedSample, RealLesionMaps,
                        disc_side, place_lesions, place_on_healthy, real_lesion_maps,
                        sampled_lesion_maps)

__all__ = ['DEFAULT_PLACEMENT_RULES', 'Placement', 'PlacedSample', 'RealLesionMaps',
           'disc_side', 'place_lesions', 'place_on_healthy', 'real_lesion_maps',
           'sampled_lesion_maps']
