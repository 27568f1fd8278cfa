"""Lesion segmentation on mmseg: the mixed real + synthetic dataset and the metrics
(registered in mmseg's registries)."""
from .dataset import FundusSegDataset, synthetic_count
from .losses import ClassDiceLoss
from .metrics import LesionImageMetric, LesionPixelMetric, PaperLesionMetric

__all__ = ['ClassDiceLoss', 'FundusSegDataset', 'synthetic_count', 'LesionImageMetric',
           'LesionPixelMetric', 'PaperLesionMetric']
