"""No tool runs code hidden in a checkpoint: each tool that loads one refuses a checkpoint
carrying a pickled payload, naming the file, before anything in it runs."""
import sys

import pytest
import torch

from fundus_plugins.checkpoint import CheckpointRefused

from conftest import REPO

sys.path.insert(0, str(REPO / 'tools'))
import balance  # noqa: E402
import measure_synthetic  # noqa: E402
import sample_labels  # noqa: E402
import synthesize  # noqa: E402
import test as test_tool  # noqa: E402
import train  # noqa: E402
import translate  # noqa: E402

ACGAN = str(REPO / 'configs/acgan_labels_demo.py')
SPADE = str(REPO / 'configs/spade_fundus_demo.py')
SEG = str(REPO / 'configs/seg/unet_fundus_demo.py')


class Payload:
    """Unpickling this would run open(marker, 'w'): a stand-in for hidden code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, 'w')


def _argv(tool, bad, root, out):
    return {
        'sample_labels': [ACGAN, bad, '--num-per-grade', '1', '--out', out, '--no-progress',
                          '--cfg-options', f'data_root={root}'],
        'translate': [SPADE, bad, '--labels', root, '--out', out, '--no-progress'],
        'synthesize': ['--label-config', ACGAN, '--label-checkpoint', bad, '--spade-config',
                       SPADE, '--spade-checkpoint', bad, '--num-per-grade', '1', '--out',
                       out, '--data-root', root, '--no-progress'],
        'balance': ['--real', root, '--label-config', ACGAN, '--label-checkpoint', bad,
                    '--spade-config', SPADE, '--spade-checkpoint', bad, '--out', out,
                    '--no-progress'],
        'measure_synthetic': [SEG, bad, '--synthetic', root, '--real', root, '--no-progress'],
        'test': [SEG, bad, '--work-dir', out, '--cfg-options', f'data_root={root}'],
        'train --resume': [ACGAN, '--resume', bad, '--work-dir', out, '--cfg-options',
                           f'data_root={root}', 'train_cfg.max_iters=1'],
    }[tool]


TOOLS = {'sample_labels': sample_labels, 'translate': translate, 'synthesize': synthesize,
         'balance': balance, 'measure_synthetic': measure_synthetic, 'test': test_tool,
         'train --resume': train}


@pytest.mark.parametrize('tool', list(TOOLS))
def test_every_tool_refuses_a_payload_checkpoint(tool, phantom_root, tmp_path):
    marker = tmp_path / 'ran'
    bad = tmp_path / 'payload.pth'
    torch.save({'meta': {'note': Payload(marker)}, 'state_dict': {}}, bad)
    with pytest.raises(CheckpointRefused, match=f'{bad}: refused .* io.open'):
        TOOLS[tool].main(_argv(tool, str(bad), str(phantom_root), str(tmp_path / 'out')))
    assert not marker.exists()  # nothing in the file ran
