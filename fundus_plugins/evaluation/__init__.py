"""Measures of label maps, grades, synthetic images and segmentations."""
from .grades import predict_grades
from .label_metric import LabelMapMetric
from .label_stats import GradeClassifier, MapSet, compare, format_report, load_maps

__all__ = ['LabelMapMetric', 'GradeClassifier', 'MapSet', 'compare', 'format_report',
           'load_maps', 'predict_grades']
