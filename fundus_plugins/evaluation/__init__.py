"""Measures of label maps, grades, synthetic images and segmentations."""
from .grades import predict_grades
from .label_metric import LabelMapMetric
from .label_stats import GradeClassifier, MapSet, compare, format_report, load_maps
from .seam import format_seams, gradient_magnitude, measure_seams, seam_scores

__all__ = ['LabelMapMetric', 'GradeClassifier', 'MapSet', 'compare', 'format_report',
           'load_maps', 'predict_grades', 'format_seams', 'gradient_magnitude',
           'measure_seams', 'seam_scores']
