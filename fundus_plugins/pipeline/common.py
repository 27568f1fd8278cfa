"""What the stages and the report share: the options that point a step's config at the
pipeline's data, the segmentation protocols and where their runs live, and the paper's
counts."""
from __future__ import annotations

from pathlib import Path


def model_options(ctx, extra=None) -> dict:
    """Config options that point a step's config at the pipeline's real data and
    classes, plus ``extra``."""
    opts = {'data_root': str(ctx.path('real'))}
    if 'lesion_classes' in ctx.cfg:
        opts['lesion_classes'] = list(ctx.cfg.lesion_classes)
    opts.update(extra or {})
    return opts


#: The two training protocols of the segmentation stage: the paper's (a fixed number of
#: epochs, so larger training sets get more updates) and the control that gives every
#: fraction about the updates of the real-only run.
PROTOCOLS = ('fixed_epochs', 'equal_updates')


def protocol_dir(ctx, protocol: str) -> Path:
    return ctx.path('segmentation') if protocol == 'fixed_epochs' else \
        ctx.path('segmentation', protocol)


#: Son et al.'s Table 1(c): 738 real training images (IDRiD + FGADR after their FGADR
#: exclusion list) and 246 / 738 / 2214 synthetic ones at 25 / 50 / 75 %.
PAPER_COUNTS = dict(real=738, synthetic={0.0: 0, 0.25: 246, 0.5: 738, 0.75: 2214})


def paper_counts_note(real: int, need: dict) -> str:
    """A sentence comparing the counts with the paper's Table 1(c)."""
    ours = ', '.join(f'{float(f) * 100:.0f} %: {n}' for f, n in need.items())
    paper = ', '.join(f'{f * 100:.0f} %: {n}' for f, n in PAPER_COUNTS['synthetic'].items())
    same = real == PAPER_COUNTS['real']
    return (f'Real training images: {real}; synthetic per fraction: {ours}. The paper had '
            f"{PAPER_COUNTS['real']} real ({paper}); "
            + ('the counts match.' if same else
               'these counts match the paper\'s only with its FGADR exclusion list (which '
               'it does not publish in full), so compare the trends, not the rows.'))
