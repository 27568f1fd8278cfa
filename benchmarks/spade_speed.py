#!/usr/bin/env python
"""SPADE speed: training iterations per second and translation images per second.

    python benchmarks/spade_speed.py [--iters 3] [--device cpu|cuda] [--amp]

Runs full training iterations (one discriminator and one generator update) of the demo
config and of the paper config, and batched translation with the EMA generator, on
random label maps and images (the data loader is not measured); prints a table.
"""
import argparse
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def build(config, device, amp, no_vgg=False):
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    from fundus_plugins.config import build_model, load_config
    from fundus_plugins.config import enable_amp

    cfg = load_config(str(REPO / config),
                      {'model.loss_config.lambda_vgg': 0.0} if no_vgg else None)
    model = build_model(cfg).to(device)
    if amp:
        enable_amp(cfg)
    with DefaultScope.overwrite_default_scope('mmagic'):
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
    return model, optim


def batch(model, n, device):
    from fundus_plugins.models.spade import onehot_from_labels
    size, c = model.generator.out_size, len(model.class_set)
    labels = onehot_from_labels(torch.randint(0, c, (n, size, size)), c)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)
    return labels.to(device), images.to(device)


def sync(device):
    if device == 'cuda':
        torch.cuda.synchronize()


def bench_train(model, optim, n, iters, device):
    from mmengine.logging import MessageHub
    hub = MessageHub.get_current_instance()
    labels, images = batch(model, n, device)
    data = dict(inputs=dict(img=list(images), label=list(labels)))
    hub.update_info('iter', 0)
    model.train_step(data, optim)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    for i in range(iters):
        hub.update_info('iter', i + 1)
        model.train_step(data, optim)
    sync(device)
    return (time.perf_counter() - t0) / iters


def bench_translate(model, n, iters, device, amp):
    labels, _ = batch(model, n, device)
    with torch.autocast(device_type=device, enabled=amp and device == 'cuda'):
        model.translate(labels)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            model.translate(labels)
        sync(device)
    return n * iters / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--iters', type=int, default=3)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--amp', action='store_true')
    p.add_argument('--no-vgg', action='store_true',
                   help='train without the VGG perceptual term (the paper config needs '
                        'its weights: torch hub cache or vgg_weights)')
    args = p.parse_args()
    runs = [('configs/spade_fundus_demo.py', 8), ('configs/spade_fundus.py', 1)]
    rows = []
    for config, n in runs:
        model, optim = build(config, args.device, args.amp, args.no_vgg)
        dt = bench_train(model, optim, n, args.iters, args.device)
        ips = bench_translate(model, max(n, 4), args.iters, args.device, args.amp)
        mem = torch.cuda.max_memory_allocated() / 2**30 if args.device == 'cuda' else float('nan')
        rows.append((config, model.generator.out_size, n, 1 / dt, dt, ips, mem))
    print(f'device: {args.device}, threads: {torch.get_num_threads()}, amp: {args.amp}, '
          f'VGG term: {"off" if args.no_vgg else "as configured"}')
    print('| config | size | train batch | train it/s | s/it | translate img/s | peak GPU GiB |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        print(f'| {r[0]} | {r[1]} | {r[2]} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.2f} | {r[6]:.2f} |')


if __name__ == '__main__':
    main()
