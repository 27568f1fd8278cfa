"""Quality gates between the pipeline's stages: is the synthetic data good enough to be
worth the segmentation experiment?

Two groups of checks, each a measured figure against a threshold of the pipeline
config's ``gates`` section (:data:`DEFAULTS`; docs/design.md says where each default
comes from):

after the labels stage (from ``labels/analysis.json``, see
:mod:`fundus_plugins.evaluation.label_stats`)
    * ``grade_accuracy``: the grade classifier's accuracy on the generated maps, as a
      share of its accuracy on the real test maps (the ceiling), at least this;
    * ``lesion_load``: per grade whose real maps have at least ``min_load`` of the field
      of view in lesion pixels, generated / real lesion pixels, within [low, high];
    * ``one_disc``: the share of generated maps with exactly one disc-sized optic disc,
      at least this;
    * ``diversity``: within each grade that has lesions (1-4), the mean pairwise share of
      differing pixels between generated maps over the same between real maps, averaged
      over those grades, at least this (a generator that draws one layout per grade,
      whatever its noise, scores low; grade 0 differs only by disc and field of view).

after the gates stage (the real-only segmenter's label consistency, and FID / KID
where an Inception file is given; see
:mod:`fundus_plugins.evaluation.synthetic_quality`), per image mode
    * ``label_consistency``: per class, the segmenter's F1 on the synthetic images
      against their maps, as a share of its F1 on the real test split, at least this;
      a class whose real-test F1 is below ``min_ceiling`` is not gated (the segmenter
      cannot judge it), and says so;
    * ``fid`` / ``kid``: at most these, when set and measured.

``gates.on_fail``: ``'warn'`` logs each failed check and goes on; ``'stop'`` ends the
run after the stage whose gate failed (its work is kept), with one message naming each
failed gate, its figure, its threshold and what to change (:class:`GateFailed`).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

GRADES = (0, 1, 2, 3, 4)

#: The gates section's keys and their defaults (docs/design.md: why these values).
DEFAULTS = dict(
    on_fail='warn',
    labels=dict(grade_accuracy=0.8, lesion_load=(0.5, 2.0), min_load=0.002, one_disc=0.9,
                diversity=0.7),
    images=dict(label_consistency=0.5, min_ceiling=0.3, fid=None, kid=None),
    # Not thresholds: what the gates stage measures with.
    inception_path=None, device='cpu',
)
ON_FAIL = ('warn', 'stop')


class GateFailed(RuntimeError):
    """A gate failed with ``gates.on_fail='stop'``: the message names each failed check."""


@dataclass
class Check:
    gate: str              # 'labels.grade_accuracy', 'images.full.label_consistency.HE'
    figure: str            # what was measured, in words and numbers
    threshold: str         # what it needed
    passed: Optional[bool]  # None: not gated (said in ``figure``)
    advice: str = ''       # what to change when it fails

    def line(self) -> str:
        state = {True: 'passed', False: 'FAILED', None: 'not gated'}[self.passed]
        text = f'gate {self.gate} {state}: {self.figure}'
        if self.passed is not None:
            text += f' (needs {self.threshold})'
        if self.passed is False and self.advice:
            text += f'; {self.advice}'
        return text


def check_section(gates) -> dict:
    """The ``gates`` section merged over :data:`DEFAULTS`; an unknown key or a wrong
    ``on_fail`` is an error naming it and what is allowed."""
    gates = dict(gates or {})
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    for key, value in gates.items():
        if key not in DEFAULTS:
            raise KeyError(f'pipeline gates.{key}: unknown key; the gates section takes '
                           f'{sorted(DEFAULTS)}')
        if isinstance(DEFAULTS[key], dict):
            for sub in dict(value or {}):
                if sub not in DEFAULTS[key]:
                    raise KeyError(f'pipeline gates.{key}.{sub}: unknown key; gates.{key} '
                                   f'takes {sorted(DEFAULTS[key])}')
            out[key].update(dict(value or {}))
        else:
            out[key] = value
    if out['on_fail'] not in ON_FAIL:
        raise ValueError(f"pipeline gates.on_fail: {out['on_fail']!r}; expected one of "
                         f'{list(ON_FAIL)}')
    low, high = out['labels']['lesion_load']
    if not 0 <= low <= 1 <= high:
        raise ValueError(f'pipeline gates.labels.lesion_load: ({low}, {high}); expected '
                         '(low, high) with low <= 1 <= high')
    return out


def _pct(v: float) -> str:
    return '-' if v is None or not math.isfinite(v) else f'{100 * v:.1f} %'


def label_checks(analysis: dict, thresholds: dict, max_iters=None) -> List[Check]:
    """The labels stage's checks from its ``analysis.json`` (module docstring)."""
    longer = 'train the label ACGAN longer (labels.max_iters' + \
        (f', now {max_iters})' if max_iters else ')')
    checks = []
    ga = analysis['grade_accuracy']
    gen, ceiling = ga['generated']['all'], ga['real_test_ceiling']['all']
    ratio = gen / ceiling if ceiling else math.nan
    need = thresholds['grade_accuracy']
    checks.append(Check(
        'labels.grade_accuracy',
        f'grade accuracy of generated maps {_pct(gen)}, {ratio:.2f} of the real ceiling '
        f'{_pct(ceiling)} (chance {_pct(ga["chance"])})', f'>= {need:.2f} of the ceiling',
        bool(ratio >= need), f'{longer}: its maps do not yet carry their grade'))
    low, high = thresholds['lesion_load']
    min_load = thresholds['min_load']
    loads = lesion_load_per_grade(analysis)
    for g, (gl, rl) in loads.items():
        if not math.isfinite(rl) or rl < min_load:
            checks.append(Check(f'labels.lesion_load.grade{g}',
                                f'grade {g}: real lesion load {_pct(rl)} of the field of view '
                                f'is below min_load {_pct(min_load)}; generated {_pct(gl)}',
                                '', None))
            continue
        ratio = gl / rl
        more_or_less = 'too little' if ratio < low else 'too much'
        checks.append(Check(
            f'labels.lesion_load.grade{g}',
            f'grade {g}: lesion pixels {_pct(gl)} of the field of view generated vs '
            f'{_pct(rl)} real ({ratio:.2f}x)', f'{low:g}x to {high:g}x real',
            bool(low <= ratio <= high), f'{longer}: grade {g} maps have {more_or_less} '
            'lesion'))
    one = analysis['od_one_disc']['generated']['all']
    need = thresholds['one_disc']
    checks.append(Check('labels.one_disc', f'maps with exactly one disc-sized optic disc '
                        f'{_pct(one)} (real {_pct(analysis["od_one_disc"]["real"]["all"])})',
                        f'>= {_pct(need)}', bool(one >= need) if math.isfinite(one) else None,
                        f'{longer}; several or no discs mean the disc layout is not learnt'))
    ratios = diversity_ratios(analysis)
    if ratios:
        mean = sum(ratios.values()) / len(ratios)
        need = thresholds['diversity']
        checks.append(Check(
            'labels.diversity', 'within-grade diversity of generated maps, as a share of '
            f'real maps\' (grades 1-4): {mean:.2f} (' + ', '.join(
                f'grade {g} {r:.2f}' for g, r in ratios.items()) + ')',
            f'>= {need:.2f}', bool(mean >= need),
            f'{longer}, or raise the generator\'s mode-seeking weight '
            '(model.loss_config.mode_seeking_weight): it draws much the same map for '
            'different noise'))
    return checks


def diversity_ratios(analysis: dict) -> dict:
    """{grade: generated / real mean pairwise distance} for grades 1-4 with real maps."""
    div = analysis.get('diversity') or {}
    out = {}
    for g in GRADES[1:]:
        gen = (div.get('generated') or {}).get(str(g), math.nan)
        real = (div.get('real') or {}).get(str(g), math.nan)
        if math.isfinite(gen) and math.isfinite(real) and real > 0:
            out[g] = gen / real
    return out


def lesion_load_per_grade(analysis: dict) -> dict:
    """{grade: (generated, real)} mean lesion pixels (all lesion classes but the optic
    disc) as a fraction of the field of view."""
    out = {}
    for g in GRADES:
        gen = real = 0.0
        for code, entry in analysis['lesion_load'].items():
            if code == 'OD':
                continue
            cell = entry['pixel_fraction'].get(str(g), {})
            gen += cell.get('generated_mean', math.nan)
            real += cell.get('real_mean', math.nan)
        out[g] = (gen, real)
    return out


def image_checks(quality: dict, mode: str, thresholds: dict, classes: Sequence[str],
                 max_iters=None, config: str = '') -> List[Check]:
    """The gates stage's checks of one image mode from its ``measure_synthetic`` result
    (module docstring); ``classes``: the classes gated (the lesion classes and OD)."""
    where = 'images.max_iters' if mode == 'full' else 'images.inpaint.max_iters'
    longer = f'train the translator longer ({where}' + \
        (f', now {max_iters})' if max_iters else ')') + (f' of {config}' if config else '')
    need, floor = thresholds['label_consistency'], thresholds['min_ceiling']
    lc = quality.get('label_consistency') or {}
    checks = []
    for code in classes:
        syn = (lc.get('synthetic') or {}).get(code, {}).get('f1', math.nan)
        real = (lc.get('real_test') or {}).get(code, {}).get('f1', math.nan)
        gate = f'images.{mode}.label_consistency.{code}'
        if not math.isfinite(real) or real <= 0 or real < floor:
            checks.append(Check(gate, f'{code}: the real-only segmenter scores F1 '
                                f'{_f(real)} on real test images, below min_ceiling '
                                f'{floor:g}, so it cannot judge the synthetic {code}; '
                                f'synthetic F1 {_f(syn)}', '', None))
            continue
        syn = 0.0 if not math.isfinite(syn) else syn
        ratio = syn / real
        checks.append(Check(gate, f'{code}: F1 {_f(syn)} on synthetic images vs {_f(real)} on '
                            f'real test images ({ratio:.2f} of the ceiling)',
                            f'>= {need:.2f} of the ceiling', bool(ratio >= need),
                            f'{longer}: the segmenter does not find {code} where the maps '
                            'put it'))
    image = quality.get('image') or {}
    for key in ('fid', 'kid'):
        limit = thresholds.get(key)
        if limit is None:
            continue
        value = image.get(key)
        if value is None:
            checks.append(Check(f'images.{mode}.{key}', f'{key.upper()} not measured '
                                f'({image.get("note", "no Inception file")})', '', None))
        else:
            checks.append(Check(f'images.{mode}.{key}', f'{key.upper()} {value:.4g}',
                                f'<= {limit:g}', bool(value <= limit), longer))
    return checks


def _f(v) -> str:
    return '-' if v is None or not math.isfinite(v) else f'{v:.3f}'


def enforce(checks: Iterable[Check], on_fail: str, after: str, log=print) -> None:
    """Log the failed checks (``warn``) or raise :class:`GateFailed` naming them
    (``stop``); ``after``: the stage the checks follow."""
    failed = [c for c in checks if c.passed is False]
    if not failed:
        return
    if on_fail == 'stop':
        raise GateFailed(
            f'stopped after the {after} stage: {len(failed)} quality gate(s) failed, and '
            "gates.on_fail is 'stop'. " + ' '.join(f'[{c.line()}]' for c in failed)
            + " Its work is kept; change what the gates name and run the same command "
            "again, or set gates.on_fail='warn' to go on regardless.")
    for c in failed:
        log(f'warning: {c.line()}')


def save_checks(path: Path, group: str, checks: Sequence[Check]) -> None:
    """Keep ``group``'s checks in the work dir's gates.json (for the report)."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[group] = [asdict(c) for c in checks]
    path.write_text(json.dumps(data, indent=2) + '\n')


def format_gates(data: dict) -> str:
    """Markdown: every check of gates.json, failed ones first in each group."""
    lines = ['| gate | measured | needs | result |', '|---|---|---|---|']
    for group, checks in data.items():
        for c in sorted(checks, key=lambda c: {False: 0, True: 1, None: 2}[c['passed']]):
            state = {True: 'passed', False: '**failed**', None: 'not gated'}[c['passed']]
            lines.append(f"| {c['gate']} | {c['figure']} | {c['threshold'] or '-'} | "
                         f'{state} |')
    return '\n'.join(lines) + '\n'


def summary_line(data: dict) -> str:
    """'12 of 14 gates passed, 1 failed (labels.grade_accuracy), 1 not gated'."""
    checks = [c for group in data.values() for c in group]
    passed = sum(c['passed'] is True for c in checks)
    failed = [c['gate'] for c in checks if c['passed'] is False]
    ungated = sum(c['passed'] is None for c in checks)
    text = f'{passed} of {passed + len(failed)} gates passed'
    if failed:
        text += f', {len(failed)} failed ({", ".join(failed)})'
    if ungated:
        text += f'; {ungated} check(s) not gated'
    return text
