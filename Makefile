# The two set-up commands of the README. Each creates or reuses .venv (tools/setup_env.sh).
PY := .venv/bin/python
DEMO_DIR ?= work_dirs/demo
PYTEST_ARGS ?=

.PHONY: env demo test bench clean-env

env:
	@tools/setup_env.sh

# The main job on the embedded default data (the fundus phantom).
demo: env
	$(PY) tools/make_phantom.py --num 200 --size 256 --out $(DEMO_DIR)/phantom --seed 0 --overwrite

test: env
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q tests $(PYTEST_ARGS)

bench: env
	$(PY) benchmarks/phantom_speed.py

clean-env:
	rm -rf .venv
