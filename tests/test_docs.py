"""The manual's commands run, and its links resolve (README.md and docs/*.md).

Runnable blocks. A fenced ``bash`` block whose opening fence comes right after the line
``<!-- runnable -->`` or ``<!-- runnable: EXTRA -->`` is run by this test; other blocks
are not. Each page's runnable blocks run in order, each with ``bash -e``, in one fresh
sandbox directory per page, so a later block can use an earlier one's outputs. The
sandbox holds ``configs/``, ``tools/`` and ``benchmarks/`` linked from the repository and
a micro phantom (:data:`PHANTOM`: 20 images at 64 px, seed 0) at
``work_dirs/demo/phantom``, where the demo configs read it; ``python`` on PATH is the
interpreter running the tests. EXTRA, when given, is appended to every command line of
the block that starts with ``python`` (backslash-continued lines joined first): that is
how a documented command is shrunk to seconds (argparse keeps the last of a repeated
option, e.g. ``--num 12``; mmengine's ``--cfg-options`` merges its key=value pairs, e.g.
``train_cfg.max_iters=2``). The reader sees the command as documented; the HTML comment
does not render. A documented command that no longer works fails here, and so does one
that prints a warning of the pinned stack (a warning from a site-packages file).

Links. Every relative link and image of those pages must name a file that exists, and a
``#anchor`` a heading of its target page (GitHub's rule: lower case, punctuation other
than ``-`` and ``_`` dropped, spaces to ``-``, repeats numbered). Every page under docs/
is linked from the README.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PAGES = [REPO / 'README.md'] + sorted((REPO / 'docs').glob('*.md'))
PHANTOM = dict(num=20, size=64, seed=0)
MARK = re.compile(r'^<!--\s*runnable(?::\s*(?P<extra>.*?))?\s*-->\s*$')
FENCE = re.compile(r'^(?P<fence>```+|~~~+)\s*(?P<info>[^`]*)$')
SHELLS = ('bash', 'sh', 'shell', 'console')


# ---------------------------------------------------------------------------- parsing
def fenced_blocks(text: str):
    """``(line number of the opening fence, info string, body lines, line before the
    fence)`` for every fenced code block of a markdown text."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i].strip())
        if not m:
            i += 1
            continue
        fence, start = m.group('fence'), i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        yield start + 1, m.group('info').strip(), body, lines[start - 1] if start else ''
        i += 1


def join_continued(lines) -> list:
    """Shell lines with backslash continuations joined."""
    out, cur = [], ''
    for line in lines:
        part = line.strip() if cur else line.rstrip()
        if part.endswith('\\'):
            cur += part[:-1].rstrip() + ' '
            continue
        out.append(cur + part)
        cur = ''
    if cur:
        out.append(cur)
    return out


def with_extra(line: str, extra: str) -> str:
    """``line`` with ``extra`` appended when it is a ``python`` command (before a
    trailing comment)."""
    if not extra or not line.lstrip().startswith('python '):
        return line
    code, hash_, comment = line.partition(' #')
    return f'{code.rstrip()} {extra}' + (f' #{comment}' if hash_ else '')


def runnable_blocks(text: str) -> list:
    """``(line number, script)`` of every runnable block of a markdown text, EXTRA
    applied."""
    out = []
    for line_no, info, body, before in fenced_blocks(text):
        m = MARK.match(before.strip())
        if not m:
            continue
        if info.split()[:1] not in ([s] for s in SHELLS):
            raise ValueError(f'line {line_no}: a runnable block must be a shell block '
                             f'(```bash), not {info!r}')
        extra = (m.group('extra') or '').strip()
        script = '\n'.join(with_extra(line, extra) for line in join_continued(body))
        out.append((line_no, script))
    return out


def test_runnable_blocks_are_found_and_shrunk():
    text = '\n'.join([
        '# A page', '', '```bash', 'python tools/not_run.py', '```',
        '<!-- runnable -->', '```bash', 'python tools/a.py x  # a comment', 'ls', '```',
        'text', '<!-- runnable: --num 3 --cfg-options a.b=1 -->', '```bash',
        'python tools/b.py \\', '    --out d', 'echo python tools/b.py', '```',
        '<!-- runnable -->', '', '```bash', 'python tools/not_adjacent.py', '```'])
    blocks = runnable_blocks(text)
    assert [n for n, _ in blocks] == [7, 13]
    assert blocks[0][1] == 'python tools/a.py x  # a comment\nls'
    assert blocks[1][1] == ('python tools/b.py --out d --num 3 --cfg-options a.b=1\n'
                            'echo python tools/b.py')
    with pytest.raises(ValueError, match=r"line 2: a runnable block must be a shell block"):
        runnable_blocks('<!-- runnable -->\n```python\nprint(1)\n```')


# ---------------------------------------------------------------------------- running
@pytest.fixture(scope='module')
def micro_phantom(tmp_path_factory):
    from fundus_plugins.phantom import write_phantom_dataset
    root = tmp_path_factory.mktemp('docs_phantom') / 'phantom'
    write_phantom_dataset(root, progress=False, **PHANTOM)
    return root


def sandbox(tmp_path: Path, phantom: Path) -> Path:
    box = tmp_path / 'sandbox'
    box.mkdir()
    for name in ('configs', 'tools', 'benchmarks'):
        (box / name).symlink_to(REPO / name)
    shutil.copytree(phantom, box / 'work_dirs' / 'demo' / 'phantom')
    return box


def run_block(box: Path, page: str, line_no: int, script: str) -> None:
    env = dict(os.environ, PATH=f'{Path(sys.executable).parent}{os.pathsep}'
               f'{os.environ.get("PATH", "")}', OMP_NUM_THREADS='1',
               NO_ALBUMENTATIONS_UPDATE='1', HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1')
    proc = subprocess.run(['bash', '-e', '-c', script], cwd=box, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    assert proc.returncode == 0, (
        f'{page}, the runnable block at line {line_no} failed (exit {proc.returncode}):\n'
        f'{script}\n--- its output (last 3000 characters) ---\n{proc.stdout[-3000:]}')
    # A tool shows no notice of the pinned stack (tools/_tool.py: STACK_NOTICES).
    stack = re.findall(r'^.*(?:site|dist)-packages/\S+:\d+: \w*Warning:.*$', proc.stdout, re.M)
    assert not stack, (f'{page}, the runnable block at line {line_no} printed warnings of '
                       f'the pinned stack:\n' + '\n'.join(stack))


RUNNABLE = [p for p in PAGES if runnable_blocks(p.read_text())]


@pytest.mark.parametrize('page', RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_the_documented_commands_run(page, micro_phantom, tmp_path):
    box = sandbox(tmp_path, micro_phantom)
    for line_no, script in runnable_blocks(page.read_text()):
        run_block(box, str(page.relative_to(REPO)), line_no, script)


def test_the_manual_has_runnable_blocks():
    """The guides are tested: at least one page runs its commands (so a change that
    drops every marker is noticed)."""
    assert len(RUNNABLE) >= 3, [p.name for p in RUNNABLE]


def test_a_broken_command_fails(micro_phantom, tmp_path):
    """The runner fails on a command that does not work, naming the page and line."""
    box = sandbox(tmp_path, micro_phantom)
    [(line_no, script)] = runnable_blocks(
        '<!-- runnable: --num 3 -->\n```bash\npython tools/make_phantom.py --no-such-option\n```')
    with pytest.raises(AssertionError, match=r'guide.md, the runnable block at line 2 failed'):
        run_block(box, 'guide.md', line_no, script)


# ---------------------------------------------------------------------------- links
LINK = re.compile(r'!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
IMG = re.compile(r'<img\s[^>]*src="([^"]+)"')


def prose(text: str, code_spans: bool = False) -> str:
    """The text without fenced blocks and (unless ``code_spans``) inline code: links
    there are examples."""
    lines, keep, fence = text.splitlines(), [], None
    for line in lines:
        m = FENCE.match(line.strip())
        if fence is None and m:
            fence = m.group('fence')
            continue
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            continue
        keep.append(line if code_spans else re.sub(r'`[^`]*`', '', line))
    return '\n'.join(keep)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading's text."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # a link: its text
    text = text.strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(text: str) -> set:
    seen, out = {}, set()
    for line in prose(text, code_spans=True).splitlines():
        m = re.match(r'^(#{1,6})\s+(.*?)\s*#*\s*$', line)
        if not m:
            continue
        a = anchor(m.group(2))
        n = seen.get(a, 0)
        seen[a] = n + 1
        out.add(a if n == 0 else f'{a}-{n}')
    return out


def links(page: Path) -> list:
    text = prose(page.read_text())
    return LINK.findall(text) + IMG.findall(text)


def test_anchor_rule():
    assert anchor('The phantom benchmark: `make benchmark`') == \
        'the-phantom-benchmark-make-benchmark'
    assert anchor('Step 1: the label generator (grade-conditioned ACGAN)') == \
        'step-1-the-label-generator-grade-conditioned-acgan'
    assert anchors('# A\n## A\n```\n# not a heading\n```\n### B_c d') == {'a', 'a-1', 'b_c-d'}


@pytest.mark.parametrize('page', PAGES, ids=[p.name for p in PAGES])
def test_relative_links_and_images_resolve(page):
    bad = []
    for target in links(page):
        if re.match(r'^[a-z][a-z0-9+.-]*:', target):  # https:, mailto:, ...
            continue
        path, _, frag = target.partition('#')
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f'{target}: no file {dest.relative_to(REPO) if REPO in dest.parents else dest}')
        elif frag and dest.suffix == '.md' and frag not in anchors(dest.read_text()):
            bad.append(f'{target}: no heading with anchor #{frag} in {dest.name}')
    assert not bad, f'{page.relative_to(REPO)}: ' + '; '.join(bad)


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(REPO / t.partition('#')[0]).resolve() for t in links(REPO / 'README.md')
              if not re.match(r'^[a-z][a-z0-9+.-]*:', t)}
    missing = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not missing, f'docs pages not linked from README.md: {missing}'
