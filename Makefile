# The two set-up commands of the README. Each creates or reuses .venv (tools/setup_env.sh).
PY := .venv/bin/python
# Offline, quiet imports: albumentations (imported by mmagic) asks PyPI for a newer version
# at import unless told not to (its documented switch); Hugging Face libraries likewise.
export NO_ALBUMENTATIONS_UPDATE := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
DEMO_DIR ?= work_dirs/demo
PYTEST_ARGS ?=
DEMO_ARGS ?=
BENCH_ARGS ?=

.PHONY: env demo benchmark phantom test bench clean-env

env:
	@tools/setup_env.sh

# The main job on the embedded default data (the fundus phantom): every stage of the
# mission, then work_dirs/pipeline_demo/report.md. Rerunning skips finished stages.
demo: env
	$(PY) tools/run_pipeline.py configs/pipeline/demo.py $(DEMO_ARGS)

# The phantom benchmark: the main job sized to measure what synthetic data is worth on the
# phantom, with gates, 5 seeds, both protocols and both image modes (at most 2 hours on a
# 2-core CPU): work_dirs/phantom_benchmark/report.md, the README's headline table.
benchmark: env
	$(PY) tools/run_pipeline.py configs/pipeline/phantom_benchmark.py $(BENCH_ARGS)

# The phantom alone, as the demo configs of each step expect it (work_dirs/demo/phantom).
phantom: env
	$(PY) tools/make_phantom.py --num 200 --size 256 --out $(DEMO_DIR)/phantom --seed 0 --overwrite

test: env
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

bench: env
	$(PY) benchmarks/phantom_speed.py

clean-env:
	rm -rf .venv
