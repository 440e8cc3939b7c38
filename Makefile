# siam-tracker: two commands on a fresh machine (Python 3.11, no ROS needed).
#   make demo   set everything up, then run the tracker node on a real clip
#   make test   set everything up, then run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo demo-servo test lint bench fuzz clean

setup:
	$(PYTHON) tools/setup_env.py $(if $(FORCE),--force,)

demo:
	$(PYTHON) tools/setup_env.py --demo $(if $(FORCE),--force,)
	$(PY) -m siam_tracker_ros.demo $(DEMO_ARGS)

# Closed loop: simulated pan-tilt camera + tracker node + servo on a real sequence (out/servo/).
demo-servo: setup
	$(PY) -m siam_tracker_ros.servo_demo $(DEMO_ARGS)

# One PyTorch thread per process: tests run tracker nodes beside the test process on 2 cores,
# where two threads each only fight (set OMP_NUM_THREADS to override). Two pytest-xdist
# workers, whole files each (their module fixtures are built once); TEST_WORKERS=0 runs the
# suite in this process.
TEST_WORKERS ?= 2
test: setup
	OMP_NUM_THREADS=$(or $(OMP_NUM_THREADS),1) $(PY) -m pytest \
		$(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

# Property-based fuzzing with many examples: 2000 per property, 10,000 cases against one live
# node (counts printed at the end), plus the core's entry points.
fuzz: setup
	OMP_NUM_THREADS=$(or $(OMP_NUM_THREADS),1) SIAM_FUZZ_EXAMPLES=$(or $(FUZZ_EXAMPLES),2000) \
		$(PY) -m pytest test/reliability/test_fuzz_node.py test/reliability/test_fuzz_core.py \
		-s -q -p no:randomly $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# Short speed measurements, side by side in one run (README: "CPU threads", "Trackers and
# models"); they read ../shared/data/bag.avi.
bench: setup
	$(PY) benchmarks/bench_threads.py $(BENCH_ARGS)
	$(PY) benchmarks/bench_track.py --threads 1

clean:
	rm -rf $(VENV) out .pytest_cache
