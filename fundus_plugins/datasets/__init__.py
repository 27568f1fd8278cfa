"""Datasets: public-dataset readers, the prepared layout and its dataset class."""
from .fundus_dataset import FundusDataset
from .layout import (GRADE_SOURCES, GRADES, META_COLUMNS, SPLITS, MetaRow, read_classes,
                     read_meta, stratified_split, write_meta)
from .sources import SourceRecord, read_ddr, read_fgadr, read_idrid
from .transforms import (BenGrahamFundus, LabelToOneHot, LoadFundusPair, PackFundusGenInputs, RandomFlipFundus,
                         ResizeFundus)

__all__ = [
    'FundusDataset', 'GRADE_SOURCES', 'GRADES', 'META_COLUMNS', 'SPLITS', 'MetaRow',
    'read_classes', 'read_meta', 'stratified_split', 'write_meta', 'SourceRecord',
    'read_ddr', 'read_fgadr', 'read_idrid', 'LabelToOneHot', 'LoadFundusPair',
    'PackFundusGenInputs', 'RandomFlipFundus', 'ResizeFundus', 'BenGrahamFundus',
]
