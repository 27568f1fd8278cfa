"""Shared fixtures: tiny IDRiD / FGADR trees in their published layouts, and phantoms."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

import torch  # noqa: E402
from torchvision.models import vgg19  # noqa: E402

import fundus_plugins  # noqa: E402,F401
from fundus_plugins.models.spade.losses import VGG19_FILE  # noqa: E402
from fundus_plugins.phantom import draw_phantom  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# the tools' shared module (tools/_tool.py: run_tool, argument types) and the tools
sys.path.insert(0, str(REPO / 'tools'))


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def child_options(signalled: bool = False) -> dict:
    """Keyword arguments of subprocess.Popen / run for a test's child process, so that it
    does not depend on how the test run was launched: stdin is /dev/null (not whatever the
    launcher left on fd 0: a terminal, nothing, a closed descriptor), and with
    ``signalled`` (a test that sends it a signal) SIGINT, SIGTERM, SIGQUIT and SIGHUP are
    at their defaults in the child. A background job of a non-interactive shell inherits
    SIGINT and SIGQUIT as ignored, nohup SIGHUP, and Python keeps an ignored SIGINT
    ignored: such a child would never see the signal the test sends."""
    options = dict(stdin=subprocess.DEVNULL)
    if signalled:
        options['preexec_fn'] = _default_signals
    return options


def fake_photo(grade: int, seed: int, size: int = 96, pad: int = 24):
    """A phantom fundus padded left and right, like a wide camera frame.

    Returns (image RGB, {code: bool mask}) at (size, size + 2 * pad).
    """
    s = draw_phantom(grade, size, seed=seed)
    img = np.zeros((size, size + 2 * pad, 3), np.uint8)
    img[:, pad:pad + size] = s.image
    masks = {}
    for code, m in s.masks.items():
        full = np.zeros(img.shape[:2], bool)
        full[:, pad:pad + size] = m
        masks[code] = full
    return img, masks


def write_rgb(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def write_mask(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), mask.astype(np.uint8) * 255)


IDRID_FOLDERS = {'MA': '1. Microaneurysms', 'HE': '2. Haemorrhages', 'EX': '3. Hard Exudates',
                 'SE': '4. Soft Exudates', 'OD': '5. Optic Disc'}


@pytest.fixture
def idrid_tree(tmp_path):
    """IDRiD with 3 training and 2 testing images; IDRiD_02 has no SE mask file;
    IDRiD_01 is also in the grading CSV (grade 3), whose third column has IDRiD's
    trailing space."""
    root = tmp_path / 'IDRiD'
    seg = root / 'A. Segmentation'
    truth = {}
    for i, subset in [(1, 'a. Training Set'), (2, 'a. Training Set'), (3, 'a. Training Set'),
                      (4, 'b. Testing Set'), (5, 'b. Testing Set')]:
        stem = f'IDRiD_{i:02d}'
        img, masks = fake_photo(grade=3, seed=i)
        write_rgb(seg / '1. Original Images' / subset / f'{stem}.jpg', img)
        for code, folder in IDRID_FOLDERS.items():
            if stem == 'IDRiD_02' and code == 'SE':
                continue
            m = masks.get(code, np.zeros(img.shape[:2], bool))
            write_mask(seg / '2. All Segmentation Groundtruths' / subset / folder
                       / f'{stem}_{code}.tif', m)
        truth[stem] = (img, masks)
    grades = root / 'B. Disease Grading' / '2. Groundtruths'
    grades.mkdir(parents=True)
    (grades / 'a. IDRiD_Disease Grading_Training Labels.csv').write_text(
        'Image name,Retinopathy grade,Risk of macular edema ,,\n'
        'IDRiD_001,2,1,,\n'
        'IDRiD_01,3,2,,\n'
        ',,,,\n')
    return root, truth


FGADR_FOLDERS = {'MA': 'Microaneurysms_Masks', 'HE': 'Hemohedge_Masks',
                 'EX': 'HardExudate_Masks', 'SE': 'SoftExudate_Masks',
                 'IRMA': 'IRMA_Masks', 'NV': 'Neovascularization_Masks'}


@pytest.fixture
def fgadr_tree(tmp_path):
    """FGADR Seg-set with 6 images of grades 0..4 (+1 of grade 4); masks written only
    where the lesion is present (as FGADR does)."""
    seg = tmp_path / 'FGADR' / 'Seg-set'
    rows = []
    truth = {}
    for i, grade in enumerate([0, 1, 2, 3, 4, 4], start=1):
        name = f'{i:04d}_{"ABCDEF"[i - 1]}.png'
        img, masks = fake_photo(grade=grade, seed=100 + i)
        write_rgb(seg / 'Original_Images' / name, img)
        for code, folder in FGADR_FOLDERS.items():
            if code in masks and masks[code].any():
                write_mask(seg / folder / name, masks[code])
        rows.append(f'{name},{grade}')
        truth[name] = (img, masks, grade)
    (seg / 'DR_Seg_Grading_Label.csv').write_text('\n'.join(rows) + '\n')
    return tmp_path / 'FGADR', truth


@pytest.fixture(scope='session')
def phantom_root(tmp_path_factory):
    """A small prepared phantom dataset shared by several tests (do not modify)."""
    from fundus_plugins.phantom import write_phantom_dataset
    root = tmp_path_factory.mktemp('phantom')
    write_phantom_dataset(root, num=20, size=64, seed=3, progress=False)
    return root


def write_config(base, path, options) -> Path:
    """``base`` as the tools load it with ``options`` (``fundus_plugins.config.load_config``:
    run settings such as ``data_root`` carried into the components), written to ``path`` as
    a complete config file that any tool reads the same."""
    from fundus_plugins.config import load_config
    cfg = load_config(str(base), options)
    cfg.dump(str(path))
    return Path(path)


def tiny_seg_options(root) -> dict:
    """The demo U-Net, tinier (8 channels, 64 px), one epoch, on the prepared ``root``."""
    return {'data_root': str(root), 'image_size': 64,
            'model.backbone.base_channels': 8, 'model.decode_head.in_channels': 8,
            'model.decode_head.channels': 8, 'train_dataloader.batch_size': 4,
            'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1, 'param_scheduler': [],
            'default_hooks.logger.interval': 1, 'default_hooks.checkpoint.interval': 1}


@pytest.fixture(scope='session')
def seg_trained(phantom_root, tmp_path_factory):
    """One epoch of a tiny U-Net on the shared phantom: (config path, checkpoint, work)."""
    from mmengine.config import Config

    from fundus_plugins.config import build_runner
    work = tmp_path_factory.mktemp('seg')
    config = write_config(REPO / 'configs/seg/unet_fundus_demo.py', work / 'unet_tiny.py',
                          tiny_seg_options(phantom_root))
    cfg = Config.fromfile(str(config))
    cfg.work_dir = str(work)
    build_runner(cfg).train()
    return config, work / 'epoch_1.pth', work


def mark_synthetic(root, prefix: str = 'syn_') -> None:
    """Turn a prepared phantom into a stand-in for tools/synthesize.py output: every row
    ``grade_source=synthetic`` in the training split, names prefixed (files renamed), so
    that no name is a real root's."""
    import dataclasses

    from fundus_plugins.datasets import read_meta, write_meta
    from fundus_plugins.datasets.layout import image_path, label_path
    rows = read_meta(root)
    for r in rows:
        for path in (image_path, label_path):
            path(root, r.name).rename(path(root, prefix + r.name))
    write_meta(root, [dataclasses.replace(r, name=prefix + r.name, grade_source='synthetic',
                                          split='train', dataset='synthetic') for r in rows])


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """30 phantom pairs marked synthetic, all in the training split (do not modify)."""
    from fundus_plugins.phantom import write_phantom_dataset
    root = tmp_path_factory.mktemp('syn')
    write_phantom_dataset(root, num=30, size=64, seed=9, progress=False)
    mark_synthetic(root)
    return root


@pytest.fixture(scope='session')
def vgg_file(tmp_path_factory):
    """A stand-in for vgg19-dcbb9e9d.pth: torchvision's vgg19 ``features.*`` keys (all of
    them, beyond relu5_1 too, as in the real file), random weights, in a torch hub cache
    (TORCH_HOME/hub/checkpoints)."""
    home = tmp_path_factory.mktemp('torch_home')
    path = home / 'hub' / 'checkpoints' / VGG19_FILE
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    state = {k: v for k, v in vgg19(weights=None).state_dict().items()
             if k.startswith('features.')}
    torch.save(state, path)
    return home, path, state


INPAINT_ITERS = 4
#: The inpainting demo config, tinier (64 px, a few channels), for INPAINT_ITERS iterations.
INPAINT_TINY = {
    'image_size': 64, 'model.generator.ngf': 4, 'model.generator.max_channels': 16,
    'model.generator.spade_hidden': 8, 'model.discriminator.ndf': 4,
    'model.loss_config.d_context': 8, 'train_dataloader.batch_size': 3,
    'train_cfg.max_iters': INPAINT_ITERS, 'default_hooks.logger.interval': 1,
    'default_hooks.checkpoint.interval': 2,
    'custom_hooks': [dict(type='InpaintGridHook', interval=INPAINT_ITERS, num_samples=4)]}


@pytest.fixture(scope='session')
def inpaint_trained(tmp_path_factory):
    """INPAINT_ITERS iterations of a tiny inpainting demo config on a 64 px phantom of 12:
    (phantom root, work dir, config, runner, options); do not modify."""
    from fundus_plugins.checkpoint import mmengine_checkpoint_globals
    from fundus_plugins.config import build_runner, load_config
    from fundus_plugins.phantom import write_phantom_dataset
    root = tmp_path_factory.mktemp('ph')
    write_phantom_dataset(root, num=12, size=64, seed=2, progress=False)
    work = tmp_path_factory.mktemp('inpaint')
    options = dict(INPAINT_TINY, data_root=str(root))
    cfg = load_config(str(REPO / 'configs/inpaint_fundus_demo.py'), options, work_dir=work)
    runner = build_runner(cfg)
    with mmengine_checkpoint_globals():
        runner.train()
    return root, work, cfg, runner, options
