"""A data preprocessor for label maps: stack and move to the device, nothing else.

mmagic's ``DataPreprocessor`` normalises images by mean / std and converts channel order,
which has no meaning for C-channel probability maps; this one leaves values as they are.
"""
from __future__ import annotations

from typing import Optional

import torch
from mmagic.registry import MODELS
from mmagic.structures import DataSample
from mmengine.model import BaseDataPreprocessor


@MODELS.register_module()
class LabelMapPreprocessor(BaseDataPreprocessor):
    """Stacks list inputs into float batches and data samples into one DataSample."""

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data.get('inputs')
        if isinstance(inputs, dict):
            inputs = {k: torch.stack(v).float() if isinstance(v, (list, tuple)) and v
                      and isinstance(v[0], torch.Tensor) else v for k, v in inputs.items()}
        elif isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], torch.Tensor):
            inputs = {'img': torch.stack(inputs).float()}
        samples = data.get('data_samples')
        if isinstance(samples, (list, tuple)) and samples and isinstance(samples[0], DataSample):
            samples = DataSample.stack(list(samples))
        return dict(inputs=inputs, data_samples=samples)

    def destruct(self, outputs: torch.Tensor, data_samples: Optional[object] = None,
                 key: str = 'img') -> torch.Tensor:
        """Inverse of :meth:`forward` for model outputs: the identity."""
        return outputs
