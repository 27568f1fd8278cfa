"""The data preprocessor of the project's generative models.

Stacks the packed inputs into batches on the model's device. Images (the keys in
``image_keys``) go from uint8 [0, 255] to float [-1, 1], RGB kept; everything else (one-hot
label maps) is only stacked and cast to float. mmagic's ``DataPreprocessor`` would also
normalise C-channel label maps and reorder channels to BGR on the way out, neither of
which has a meaning here.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from mmagic.registry import MODELS
from mmagic.structures import DataSample
from mmengine.model import BaseDataPreprocessor


@MODELS.register_module()
class FundusDataPreprocessor(BaseDataPreprocessor):
    """Args:
        image_keys: input keys holding uint8 images to scale to [-1, 1].
    """

    def __init__(self, image_keys: Sequence[str] = ()):
        super().__init__()
        self.image_keys = tuple(image_keys)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data.get('inputs')
        if isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], torch.Tensor):
            inputs = {'img': list(inputs)}
        if isinstance(inputs, dict):
            inputs = {k: self._stack(k, v) for k, v in inputs.items()}
        samples = data.get('data_samples')
        if isinstance(samples, (list, tuple)) and samples and isinstance(samples[0], DataSample):
            samples = DataSample.stack(list(samples))
        return dict(inputs=inputs, data_samples=samples)

    def _stack(self, key, value):
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
            value = torch.stack(list(value))
        if isinstance(value, torch.Tensor):
            value = value.float()
            if key in self.image_keys:
                value = value / 127.5 - 1.0
        return value

    def destruct(self, outputs: torch.Tensor, data_samples: Optional[object] = None,
                 key: str = 'img') -> torch.Tensor:
        """Model outputs back to data range: images to [0, 255] (RGB), label maps as
        they are."""
        if key in self.image_keys:
            return ((outputs + 1.0) * 127.5).clamp(0, 255)
        return outputs
