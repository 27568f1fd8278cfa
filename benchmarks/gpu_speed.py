#!/usr/bin/env python
"""GPU speed: the eager fp32 baseline beside each optimisation and the defaults.

    python benchmarks/gpu_speed.py [--quick] [--iters N] [--only translate spade unet acgan
                                   runner] [--out PREFIX] [--profile TASK]

On whatever device is present (CUDA if there is one), in one run: SPADE translation
(img/s), a SPADE training step, a U-Net training step and a label-ACGAN training step
(it/s and img/s), each as eager fp32 and with the optimisations one by one (bf16
autocast, channels-last, torch.compile) and as the configs' defaults give them, with the
peak GPU memory and the ratio to the eager fp32 baseline; and the SPADE config trained by
mmengine's Runner as tools/train.py builds it beside a bare train_step loop (the
Runner's overhead; target: within 1.10x). The paper configs at their
sizes (SPADE 512 px, U-Net 512 px, label ACGAN 256 px); --quick runs the demo configs at
small batches (a smoke test that fits a CPU). Random inputs: the data loader is not
measured. Writes PREFIX.md and PREFIX.json when --out is given.
"""
import argparse
import json
import logging
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from fundus_plugins.config import build_model, load_config
from fundus_plugins.engine import resolve_precision
from fundus_plugins.models.spade import onehot_from_labels

REPO = Path(__file__).resolve().parents[1]
DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'

#: task -> (paper config, batch), (quick config, batch)
TASKS = {
    'translate': (('configs/spade_fundus.py', 32), ('configs/spade_fundus_demo.py', 8)),
    'spade': (('configs/spade_fundus.py', 8), ('configs/spade_fundus_demo.py', 2)),
    'unet': (('configs/seg/unet_fundus_real.py', 4), ('configs/seg/unet_fundus_demo.py', 4)),
    'acgan': (('configs/acgan_labels.py', 64), ('configs/acgan_labels_demo.py', 8)),
    'inpaint': (('configs/inpaint_fundus.py', 4), ('configs/inpaint_fundus_demo.py', 2)),
}
#: variant -> (cfg options, channels-last, torch.compile); 'defaults': the config as is.
VARIANTS = {
    'eager fp32': ({'precision': 'fp32'}, False, False),
    'bf16': ({'precision': 'bf16'}, False, False),
    'bf16 + channels-last': ({'precision': 'bf16'}, True, False),
    'bf16 + channels-last + compile': ({'precision': 'bf16'}, True, True),
    'defaults': ({}, None, None),
}


def sync():
    if DEVICE == 'cuda':
        torch.cuda.synchronize()


def available(variant: str) -> bool:
    options = VARIANTS[variant][0]
    try:
        resolve_precision(options.get('precision', 'auto'))
    except ValueError:
        return False  # bf16 on a machine without CUDA
    return True


def build(config, options, channels_last, compile_):
    opts = dict(options)
    if 'spade' in config or 'inpaint' in config:
        opts['model.loss_config.lambda_vgg'] = 0.0  # no weights to fetch; VGG is timed apart
    if 'spade' in config:
        if channels_last is not None:
            opts['model.channels_last'] = channels_last
        if compile_ is not None:
            opts['model.compile'] = bool(compile_)
    cfg = load_config(str(REPO / config), opts, log=lambda *a, **k: None)
    scope = cfg.get('default_scope', 'mmagic')
    model = build_model(cfg).to(DEVICE)
    if 'spade' not in config:  # SPADEGAN has switches of its own
        if channels_last is None:  # the defaults: what the config's ChannelsLastHook does
            hook = (cfg.get('default_hooks') or {}).get('channels_last') or {}
            channels_last = hook.get('type') == 'ChannelsLastHook' and (
                DEVICE == 'cuda' or hook.get('force', False))
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        if compile_:
            model.forward = torch.compile(model.forward)
    with DefaultScope.overwrite_default_scope(scope):
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
    return cfg, model, optim


def step_fn(task, cfg, model, optim, batch):
    """A closure running one step of ``task`` on random inputs."""
    hub = MessageHub.get_current_instance()
    if task in ('translate', 'spade'):
        size, c = model.generator.out_size, len(model.class_set)
        labels = onehot_from_labels(torch.randint(0, c, (batch, size, size)), c).to(DEVICE)
        if task == 'translate':
            dtype = getattr(optim, 'cast_dtype', None)

            def run(i):
                with torch.autocast(DEVICE, dtype=dtype or torch.float32,
                                    enabled=dtype is not None):
                    model.translate(labels)
            return run
        images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
        data = dict(inputs=dict(img=list(images.to(DEVICE)), label=list(labels)))

        def run(i):
            hub.update_info('iter', i)
            model.train_step(data, optim)
        return run
    if task == 'inpaint':
        return inpaint_step(cfg, model, optim, batch, hub)
    if task == 'unet':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        size = cfg.image_size
        num = model.decode_head.num_classes

        def run(i):
            samples = []
            for _ in range(batch):
                s = SegDataSample()
                s.gt_sem_seg = PixelData(data=torch.randint(0, num, (1, size, size)))
                s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                                    pad_shape=(size, size)))
                samples.append(s)
            imgs = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
                    for _ in range(batch)]
            with DefaultScope.overwrite_default_scope('mmseg'):
                model.train_step(dict(inputs=imgs, data_samples=samples), optim)
        return run
    from mmagic.structures import DataSample  # acgan
    c, size = len(model.class_set), model.generator.out_size
    model._gen_steps, model._disc_steps = 2, 1

    def run(i):
        hub.update_info('iter', i)
        x = F.one_hot(torch.randint(0, c, (batch, size, size)), c).permute(0, 3, 1, 2).float()
        samples = []
        for g in torch.randint(0, 5, (batch,)):
            ds = DataSample()
            ds.set_gt_label(g)
            samples.append(ds)
        model.train_step(dict(inputs=dict(img=list(x)), data_samples=samples), optim)
    return run


def inpaint_step(cfg, model, optim, batch, hub):
    """A training step of the inpainting translator on fundus-like random label maps: a
    round field of view of retina, about 0.05 % of its pixels lesions of random classes
    (holes of roughly a tenth of the field of view at 512 px and margin 8)."""
    size, c = cfg.image_size, len(model.class_set)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing='ij')
    fov = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (0.45 * size) ** 2
    gen = torch.Generator().manual_seed(0)
    labels = torch.where(fov, 1, 0).expand(batch, size, size).clone()
    spots = (torch.rand(batch, size, size, generator=gen) < 5e-4) & fov
    labels[spots] = torch.randint(2, c, (int(spots.sum()),), generator=gen)
    onehot = onehot_from_labels(labels, c).to(DEVICE)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)
    data = dict(inputs=dict(img=list(images.to(DEVICE)), label=list(onehot)))

    def run(i):
        hub.update_info('iter', i)
        model.train_step(data, optim)
    return run


def measure(task, config, batch, variant, iters):
    options, channels_last, compile_ = VARIANTS[variant]
    cfg, model, optim = build(config, options, channels_last, compile_)
    run = step_fn(task, cfg, model, optim, batch)
    run(0)  # warm-up (and compilation)
    run(1)
    sync()
    if DEVICE == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(iters):
        run(i + 2)
    sync()
    dt = (time.perf_counter() - t0) / iters
    mem = torch.cuda.max_memory_allocated() / 2**30 if DEVICE == 'cuda' else None
    del model, optim
    return {'task': task, 'config': config, 'batch': batch, 'variant': variant,
            'it_s': 1 / dt, 'img_s': batch / dt, 'peak_gib': mem}


class _Stamps:
    """Times the Runner's iterations after the first two (warm-up)."""

    priority = 'VERY_HIGH'

    def __init__(self):
        self.start = self.end = None

    def __getattr__(self, name):  # every other hook method: nothing
        if name.startswith(('before_', 'after_')):
            return lambda *a, **k: None
        raise AttributeError(name)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == 2:
            sync()
            self.start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        sync()
        self.end = time.perf_counter()


def runner_overhead(config, batch, iters):
    """it/s of the config trained by mmengine's Runner as tools/train.py builds it (data
    loader, hooks, logging included) and of a bare train_step loop over the same loader
    and model: the Runner's overhead. Data: a phantom at the config's size."""
    import tempfile

    from mmengine.hooks import Hook

    from fundus_plugins.config import build_runner
    from fundus_plugins.phantom import write_phantom_dataset

    tmp = Path(tempfile.mkdtemp(prefix='gpu_speed_'))
    size = load_config(str(REPO / config), log=lambda *a, **k: None).image_size
    write_phantom_dataset(tmp / 'data', num=max(2 * batch, 10), size=size, progress=False)
    options = {'data_root': str(tmp / 'data'), 'train_dataloader.batch_size': batch,
               'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
               'train_cfg.max_iters': iters + 2, 'custom_hooks': [],
               'default_hooks.checkpoint.interval': 10 ** 9,
               'default_hooks.checkpoint.save_last': False,
               'model.loss_config.lambda_vgg': 0.0}
    cfg = load_config(str(REPO / config), options, work_dir=tmp / 'work',
                      log=lambda *a, **k: None)
    runner = build_runner(cfg)
    stamps = type('Stamps', (_Stamps, Hook), {})()
    runner.register_hook(stamps)
    runner.train()
    with_runner = iters / (stamps.end - stamps.start)
    model, optim, hub = runner.model, runner.optim_wrapper, MessageHub.get_current_instance()
    batches = iter(runner.train_dataloader)
    for i in range(2):
        hub.update_info('iter', i)
        model.train_step(next(batches), optim)
    sync()
    t0 = time.perf_counter()
    for i in range(iters):
        hub.update_info('iter', i + 2)
        model.train_step(next(batches), optim)
    sync()
    bare = iters / (time.perf_counter() - t0)
    return {'task': 'runner', 'config': config, 'batch': batch,
            'variant': 'tools/train.py Runner vs bare train_step', 'it_s': with_runner,
            'img_s': with_runner * batch, 'peak_gib': None, 'bare_it_s': bare,
            'overhead': bare / with_runner}


def profile(task, config, batch, variant='defaults', steps=3, rows=25) -> str:
    """torch.profiler's table of the ops that take the most time in ``steps`` steps of
    ``task`` (CUDA time on a GPU, CPU time otherwise), after two warm-up steps."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    options, channels_last, compile_ = VARIANTS[variant]
    cfg, model, optim = build(config, options, channels_last, compile_)
    run = step_fn(task, cfg, model, optim, batch)
    run(0)
    run(1)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if DEVICE == 'cuda' else [])
    with torch_profile(activities=activities) as prof:
        for i in range(steps):
            run(i + 2)
        sync()
    key = 'self_cuda_time_total' if DEVICE == 'cuda' else 'self_cpu_time_total'
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def table(rows) -> str:
    base = {r['task']: r['img_s'] for r in rows if r['variant'] == 'eager fp32'}
    out = ['| task | config | batch | variant | img/s | it/s | peak GPU GiB | vs eager fp32 |',
           '|---|---|---|---|---|---|---|---|']
    for r in rows:
        mem = '-' if r['peak_gib'] is None else f"{r['peak_gib']:.2f}"
        ratio = r['img_s'] / base[r['task']] if r['task'] in base else float('nan')
        if r['task'] == 'runner':  # its ratio: the bare loop's speed over the Runner's
            ratio_text = f"bare {r['bare_it_s']:.2f} it/s: {r['overhead']:.2f}x"
        else:
            ratio_text = f'{ratio:.2f}x'
        out.append(f"| {r['task']} | {r['config']} | {r['batch']} | {r['variant']} | "
                   f"{r['img_s']:.1f} | {r['it_s']:.2f} | {mem} | {ratio_text} |")
    return '\n'.join(out)


def save(prefix, head, device, rows) -> str:
    """The table so far; written to PREFIX.md / PREFIX.json after every row when a prefix
    is given (a run stopped by a timeout keeps what it measured)."""
    text = f'{head}\n\n{table(rows)}\n'
    if prefix:
        Path(prefix + '.md').write_text(text)
        Path(prefix + '.json').write_text(json.dumps({'device': device, 'rows': rows},
                                                     indent=2) + '\n')
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--quick', action='store_true', help='demo configs, small batches')
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--only', nargs='+', choices=list(TASKS) + ['runner'],
                   default=list(TASKS) + ['runner'],
                   help="tasks; 'runner': SPADE through the Runner vs a bare train_step loop")
    p.add_argument('--variants', nargs='+', choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument('--out', help='write PREFIX.md and PREFIX.json')
    p.add_argument('--profile', choices=list(TASKS),
                   help="instead: torch.profiler's top ops of this task with the defaults")
    args = p.parse_args(argv)
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # the builders' INFO lines
    name = torch.cuda.get_device_name() if DEVICE == 'cuda' else platform.processor() or 'CPU'
    head = (f'device: {DEVICE} ({name}), torch {torch.__version__}, '
            f'{torch.get_num_threads()} CPU threads, {args.iters} timed steps each')
    print(head)
    if args.profile:
        config, batch = TASKS[args.profile][1 if args.quick else 0]
        print(profile(args.profile, config, batch))
        return 0
    rows = []
    for task in args.only:
        if task == 'runner':
            config, batch = TASKS['spade'][1 if args.quick else 0]
            rows.append(runner_overhead(config, batch, args.iters))
            print(f"runner: Runner {rows[-1]['it_s']:.2f} it/s, bare train_step "
                  f"{rows[-1]['bare_it_s']:.2f} it/s", flush=True)
            save(args.out, head, name, rows)
            continue
        config, batch = TASKS[task][1 if args.quick else 0]
        for variant in args.variants:
            if not available(variant):
                print(f'{task}: {variant}: skipped (needs a CUDA device)')
                continue
            try:
                rows.append(measure(task, config, batch, variant, args.iters))
            except Exception as exc:  # a variant this machine cannot run: say so, go on
                print(f'{task}: {variant}: failed: {type(exc).__name__}: {exc}')
                continue
            r = rows[-1]
            print(f"{task}: {variant}: {r['img_s']:.1f} img/s", flush=True)
            save(args.out, head, name, rows)
    print('\n' + save(args.out, head, name, rows))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
