"""Measures of generated label maps (and, later, images and segmentations)."""
from .label_metric import LabelMapMetric
from .label_stats import GradeClassifier, MapSet, compare, format_report, load_maps

__all__ = ['LabelMapMetric', 'GradeClassifier', 'MapSet', 'compare', 'format_report',
           'load_maps']
