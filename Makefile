# Two commands for a fresh machine (see README): `make demo` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip install -q --disable-pip-version-check -c requirements/constraints.txt
DATA ?= ../shared/data
MODEL ?= examples/mnist_int4_qsnn.pt

.PHONY: setup demo test bench clean

setup:
	$(PIP) "setuptools>=77.0.3,<81" wheel
	$(PIP) torch==2.13.0
	$(PIP) -e ".[test]"
	$(PYTHON) tools/install_lava.py --pip "$(PIP)"
	@# qemu-user runs one exactness test on an emulated AVX2-only CPU (tests/test_exact_paths.py); optional
	@command -v qemu-x86_64 >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user) >/dev/null 2>&1; } || \
		echo "note: qemu-user not installed; the emulated-AVX2 exactness test will be skipped"

# Main job end to end on the shipped example: freeze + export the int4 MNIST QSNN (numpy, onnx, nir,
# lava), verify that every backend and Intel Lava agree spike for spike, write the report.
demo: setup
	qsnn-export $(MODEL) --target numpy -o out/
	qsnn-export $(MODEL) --target onnx -o out/
	qsnn-export $(MODEL) --target nir -o out/
	qsnn-export $(MODEL) --target lava -o out/
	qsnn-verify $(MODEL) --data $(DATA)/mnist -n 1000 --steps 100 --backends torch,onnx,nir --json out/verify.json
	qsnn-verify $(MODEL) --data $(DATA)/mnist -n 20 --steps 100 --backends loihi,lava --json out/verify-lava.json
	qsnn-report $(MODEL) --data $(DATA)/mnist -n 1000 --target lava --json out/report.json --html out/report.html

test: setup
	$(PYTHON) -m pytest -q -p no:cacheprovider

bench: setup
	$(PYTHON) bench/bench_numpy_sim.py
	$(PYTHON) bench/bench_lava.py

clean:
	rm -rf out build *.egg-info .pytest_cache .hypothesis
