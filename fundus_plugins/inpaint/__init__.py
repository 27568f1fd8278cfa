"""Lesions painted into real healthy fundus photographs (beside whole-image synthesis).

:mod:`.placement` makes the composite's label map: lesion maps (from the label ACGAN or
real maps of other images) placed on a real grade-0 image's own disc and field of view.
:mod:`.apply` places lesion maps on a root's healthy images and has a trained
``SPADEInpaintGAN`` (:mod:`fundus_plugins.models.inpaint`) paint them, writing an
inpainted prepared root.
"""
from .apply import (INPAINT_COLUMNS, Composite, InpaintSummary, inpaint_lesion_maps,
                    label_map_items, paint, place_items, read_inpaint_records)
from .placement import (DEFAULT_PLACEMENT_RULES, Placement, PlacedSample, RealLesionMaps,
                        disc_side, place_lesions, place_on_healthy, real_lesion_maps,
                        sampled_lesion_maps)

__all__ = ['DEFAULT_PLACEMENT_RULES', 'INPAINT_COLUMNS', 'Composite', 'InpaintSummary',
           'Placement', 'PlacedSample', 'RealLesionMaps', 'disc_side', 'inpaint_lesion_maps',
           'label_map_items', 'paint', 'place_items', 'place_lesions', 'place_on_healthy',
           'read_inpaint_records', 'real_lesion_maps', 'sampled_lesion_maps']
