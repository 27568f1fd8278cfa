"""A pipeline stopped inside a stage goes on when run again: the data stage (stopped after
its dataset was written) and the label stage (stopped between checkpoints of its
training), whose sampled label maps are then byte-identical to an uninterrupted run's."""
import pytest

from fundus_plugins.datasets import read_meta
from fundus_plugins.engine import FastResumeIterBasedTrainLoop
from fundus_plugins.pipeline import run_pipeline, stages

from conftest import REPO
from test_pipeline import MICRO


class Stop(Exception):
    """Ends a pipeline run at a chosen stage (the test's stand-in for the rest)."""


def _stop(ctx):
    raise Stop


def _state(work, stage):
    import json
    return json.loads((work / '.stages' / f'{stage}.json').read_text())['status']


@pytest.fixture
def micro(tmp_path):
    config = tmp_path / 'micro.py'
    config.write_text(MICRO.format(repo=REPO, work=tmp_path / 'unused'))
    return str(config)


def test_a_pipeline_stopped_inside_the_data_stage_goes_on(micro, tmp_path, monkeypatch):
    work = tmp_path / 'work'

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, 'preview_dataset', interrupted)  # after the dataset is written
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(micro, work_dir=work, log=lambda *a: None)
    assert _state(work, 'data') == 'running' and (work / 'data' / 'meta.csv').is_file()
    monkeypatch.undo()
    monkeypatch.setattr(stages, 'run_grades', _stop)
    with pytest.raises(Stop):
        run_pipeline(micro, work_dir=work, log=lambda *a: None)
    assert _state(work, 'data') == 'done' and len(read_meta(work / 'data')) == 30


def test_a_label_stage_stopped_between_checkpoints_ends_as_an_uninterrupted_one(
        micro, tmp_path, monkeypatch):
    options = {'labels.max_iters': 4,
               'labels.cfg_options': {'default_hooks.checkpoint.interval': 2}}
    monkeypatch.setattr(stages, 'run_images', _stop)
    with pytest.raises(Stop):
        run_pipeline(micro, work_dir=tmp_path / 'whole', cfg_options=options,
                     log=lambda *a: None)
    # The same, killed inside training iteration 3 (after iter_2.pth), then run again.
    run_iter = FastResumeIterBasedTrainLoop.run_iter

    def killed_at_3(self, data_batch):
        if self._iter == 2:
            raise KeyboardInterrupt
        return run_iter(self, data_batch)

    monkeypatch.setattr(FastResumeIterBasedTrainLoop, 'run_iter', killed_at_3)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(micro, work_dir=tmp_path / 'cut', cfg_options=options,
                     log=lambda *a: None)
    assert _state(tmp_path / 'cut', 'labels') == 'running'
    monkeypatch.setattr(FastResumeIterBasedTrainLoop, 'run_iter', run_iter)
    said = []
    with pytest.raises(Stop):
        run_pipeline(micro, work_dir=tmp_path / 'cut', cfg_options=options,
                     log=lambda *a: said.append(' '.join(map(str, a))))
    assert any('resuming from' in s and 'iter_2.pth' in s for s in said), said
    whole = sorted((tmp_path / 'whole' / 'labels' / 'labels').glob('*.png'))
    cut = sorted((tmp_path / 'cut' / 'labels' / 'labels').glob('*.png'))
    assert [p.name for p in whole] == [p.name for p in cut] and len(whole) == 30
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(whole, cut))


def test_the_label_stage_trains_on_two_processes_with_labels_gpus(micro, tmp_path,
                                                                  monkeypatch):
    """labels.gpus=2: torchrun with 2 CPU processes (gloo), the batch split over them;
    the stage samples from the checkpoint they wrote."""
    said = []
    monkeypatch.setattr(stages, 'run_images', _stop)
    with pytest.raises(Stop):
        run_pipeline(micro, work_dir=tmp_path / 'w', log=said.append,
                     cfg_options={'labels.max_iters': 2, 'labels.gpus': 2})
    gan = tmp_path / 'w' / 'label_gan'
    assert any('label ACGAN: 2 processes (torchrun, batch 8 each)' in m for m in said)
    assert (gan / 'iter_2.pth').is_file() and (gan / 'dist_train.log').is_file()
    assert 'batch_size=8' in (gan / 'pipeline_train_config.py').read_text().replace(' ', '')
    assert len(read_meta(tmp_path / 'w' / 'labels')) == 30
    assert _state(tmp_path / 'w', 'labels') == 'done'


def test_gpus_must_split_the_batch_and_be_a_whole_number(micro, tmp_path):
    with pytest.raises(ValueError, match=r'gpus=3: the batch .* \(16\) does not split'):
        run_pipeline(micro, work_dir=tmp_path / 'w', log=lambda *a: None,
                     cfg_options={'labels.max_iters': 2, 'labels.gpus': 3})
    from fundus_plugins.pipeline.stages import section_gpus
    assert section_gpus({}, {'gpus': 4}) == 4 and section_gpus({'gpus': 2}, {'gpus': 4}) == 2
    with pytest.raises(ValueError, match="gpus: 0"):
        section_gpus({'gpus': 0})


def test_on_slurm_the_label_stage_trains_as_one_srun_job_step(micro, tmp_path,
                                                              monkeypatch):
    """labels.launcher='slurm': one srun step of gpus tasks running tools/train.py with
    --launcher slurm (a stand-in srun records its arguments and fails)."""
    import sys
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$SRUN_LOG"\n'
                                  'echo "no allocation" >&2\nexit 1\n')
    (bin_dir / 'srun').chmod(0o755)
    monkeypatch.setenv('PATH', f'{bin_dir}:{__import__("os").environ["PATH"]}')
    monkeypatch.setenv('SRUN_LOG', str(tmp_path / 'srun.log'))
    monkeypatch.setenv('SRUN_ARGS', '--qos=high')
    monkeypatch.setenv('CPUS_PER_TASK', '6')
    with pytest.raises(RuntimeError, match=r'distributed training on 4 processes failed '
                                           r'\(exit 1\); see .*dist_train.log: no allocation'):
        run_pipeline(micro, work_dir=tmp_path / 'w', log=lambda *a: None,
                     cfg_options={'labels.max_iters': 2, 'labels.gpus': 4,
                                  'labels.launcher': 'slurm'})
    argv = (tmp_path / 'srun.log').read_text().splitlines()
    gan = tmp_path / 'w' / 'label_gan'
    assert argv == ['--ntasks=4', '--ntasks-per-node=4', '--gres=gpu:4', '--cpus-per-task=6',
                    '--kill-on-bad-exit=1', '--qos=high', sys.executable, '-u',
                    str(REPO / 'tools' / 'train.py'), str(gan / 'pipeline_train_config.py'),
                    '--work-dir', str(gan), '--launcher', 'slurm']
    with pytest.raises(ValueError, match="launcher: 'mpi'"):
        run_pipeline(micro, work_dir=tmp_path / 'w2', log=lambda *a: None,
                     cfg_options={'images.launcher': 'mpi'})


def test_cfg_options_given_as_a_string_are_named(micro, tmp_path):
    """--cfg-options "labels.cfg_options={'a.b': 1}" arrives as a string, not a dict."""
    from fundus_plugins.errors import UserValueError
    with pytest.raises(UserValueError, match=r"labels: cfg_options must map config keys to "
                                             r"values, got str .*labels\.cfg_options\.model"):
        run_pipeline(micro, work_dir=tmp_path / 'w', log=lambda *a: None,
                     cfg_options={'labels.cfg_options': "{'model.generator.base_channels':2}"})
