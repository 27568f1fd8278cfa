# The two set-up commands of the README. Each creates or reuses .venv (tools/setup_env.sh).
PY := .venv/bin/python
DEMO_DIR ?= work_dirs/demo
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: env demo phantom test bench clean-env

env:
	@tools/setup_env.sh

# The main job on the embedded default data (the fundus phantom): every stage of the
# mission, then work_dirs/pipeline_demo/report.md. Rerunning skips finished stages.
demo: env
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) tools/run_pipeline.py configs/pipeline/demo.py $(DEMO_ARGS)

# The phantom alone, as the demo configs of each step expect it (work_dirs/demo/phantom).
phantom: env
	$(PY) tools/make_phantom.py --num 200 --size 256 --out $(DEMO_DIR)/phantom --seed 0 --overwrite

test: env
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q tests $(PYTEST_ARGS)

bench: env
	$(PY) benchmarks/phantom_speed.py

clean-env:
	rm -rf .venv
