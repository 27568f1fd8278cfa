#!/usr/bin/env python
"""Training speed of the label ACGAN: the demo config and the paper config at batch 1.

    python benchmarks/acgan_speed.py [--iters 5] [--device cpu|cuda] [--amp]

Runs full training iterations (one discriminator and two generator updates, ADA at
p = 0.2, EMA) on random one-hot label maps, so the data loader is not measured, and
prints a table of iterations per second.
"""
import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]


def bench(config, batch, iters, device, amp):
    from mmagic.structures import DataSample
    from mmengine.logging import MessageHub
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    from fundus_plugins.config import build_model, load_config
    from fundus_plugins.config import enable_amp

    cfg = load_config(str(REPO / config))
    model = build_model(cfg).to(device)
    if amp:
        enable_amp(cfg)
    with DefaultScope.overwrite_default_scope('mmagic'):
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
    model._gen_steps, model._disc_steps = 2, 1
    model.augment.p.fill_(0.2)
    c, size = len(model.class_set), model.generator.out_size
    hub = MessageHub.get_current_instance()

    def step(i):
        hub.update_info('iter', i)
        lab = torch.randint(0, c, (batch, size, size))
        x = F.one_hot(lab, c).permute(0, 3, 1, 2).float()
        samples = []
        for g in torch.randint(0, 5, (batch,)):
            ds = DataSample()
            ds.set_gt_label(g)
            samples.append(ds)
        model.train_step(dict(inputs=dict(img=list(x)), data_samples=samples), optim)

    step(0)  # warm-up
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(iters):
        step(i + 1)
    if device == 'cuda':
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / iters
    mem = torch.cuda.max_memory_allocated() / 2**30 if device == 'cuda' else float('nan')
    n_g = sum(p.numel() for p in model.generator.parameters()) / 1e6
    n_d = sum(p.numel() for p in model.discriminator.parameters()) / 1e6
    return size, dt, n_g, n_d, mem


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--amp', action='store_true')
    args = p.parse_args()
    runs = [('configs/acgan_labels_demo.py', 16), ('configs/acgan_labels.py', 1)]
    print(f'device: {args.device}, threads: {torch.get_num_threads()}, amp: {args.amp}')
    print('| config | size | batch | it/s | s/it | G params (M) | D params (M) | peak GPU GiB |')
    print('|---|---|---|---|---|---|---|---|')
    for config, batch in runs:
        size, dt, n_g, n_d, mem = bench(config, batch, args.iters, args.device, args.amp)
        print(f'| {config} | {size} | {batch} | {1 / dt:.2f} | {dt:.3f} | {n_g:.2f} | '
              f'{n_d:.2f} | {mem:.2f} |')


if __name__ == '__main__':
    main()
