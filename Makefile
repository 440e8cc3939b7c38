# siam-tracker: two commands on a fresh machine (Python 3.11, no ROS needed).
#   make demo   set everything up, then run the tracker node on a real clip
#   make test   set everything up, then run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint bench clean

setup:
	$(PYTHON) tools/setup_env.py $(if $(FORCE),--force,)

demo:
	$(PYTHON) tools/setup_env.py --demo $(if $(FORCE),--force,)
	$(PY) -m siam_tracker_ros.demo $(DEMO_ARGS)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) out .pytest_cache
