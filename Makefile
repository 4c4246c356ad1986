# Two commands for a fresh machine (see README): `make demo` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip install -q --disable-pip-version-check -c requirements/constraints.txt
DATA ?= ../shared/data
MODEL ?= examples/mnist_int4_qsnn.pt
LOIHI_MODEL ?= examples/mnist_int4_loihi.pt
CUBA_MODEL ?= examples/mnist_int4_cuba_loihi.pt
XYLO_MODEL ?= examples/mnist_rows_xylo.pt

.PHONY: setup demo test bench clean

setup:
	$(PIP) "setuptools>=77.0.3,<81" wheel
	$(PIP) torch==2.13.0
	$(PIP) -e ".[test]"
	$(PYTHON) tools/install_lava.py --pip "$(PIP)"
	@# xylosim (the Xylo target's vendor simulator, in the peers extra) builds from source: it needs a C++ compiler
	@command -v g++ >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++) >/dev/null 2>&1; } || \
		{ echo "error: no C++ compiler (g++) to build xylosim; install one (apt-get install g++)"; exit 1; }
	@# NIR peers (Norse, Sinabs, Rockpool), NeuroBench and xylosim: the peers extra, the first four with --no-deps (tools/install_peers.py)
	$(PYTHON) tools/install_peers.py --pip "$(PIP)"
	@# qemu-user runs one exactness test on an emulated AVX2-only CPU (tests/test_exact_paths.py); optional
	@command -v qemu-x86_64 >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user) >/dev/null 2>&1; } || \
		echo "note: qemu-user not installed; the emulated-AVX2 exactness test will be skipped"
	@# headless Chromium renders the HTML report at 1400 px and 420 px (tests/test_report_browser.py); optional
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
		echo "note: chromium not installed; the browser test of the HTML report will be skipped"

# Main job end to end on the shipped examples: freeze + export the int4 MNIST QSNN (numpy, onnx, nir,
# lava), verify that every backend and Intel Lava agree spike for spike, write the report; then the
# same for the model trained with --profile loihi, which runs on Lava's stock LIF (stock Loihi 2), the
# current-based one (route 3), and the Xylo model (route 4: its .npz spec in SynSense's xylosim).
demo: setup
	@echo "== route 1: $(MODEL) (default profile: subtract reset, per-channel θ) =="
	@echo "   Lava runs it with qsnn-deploy's custom QLIF process: exact in Lava's CPU simulator, NOT stock Loihi 2"
	qsnn-export $(MODEL) --target numpy -o out/
	qsnn-export $(MODEL) --target onnx -o out/
	qsnn-export $(MODEL) --target nir -o out/
	qsnn-export $(MODEL) --target lava -o out/
	qsnn-verify $(MODEL) --data $(DATA)/mnist -n 1000 --steps 100 --backends torch,onnx,nir --json out/verify.json
	qsnn-verify out/$(basename $(notdir $(MODEL))).net --data $(DATA)/mnist -n 200 --steps 100 --backends loihi,lava --json out/verify-lava.json
	qsnn-report $(MODEL) --data $(DATA)/mnist -n 1000 --target lava --json out/report.json --html out/report.html
	@echo "== route 2: $(LOIHI_MODEL) (qsnn-train --profile loihi): runs on STOCK Loihi 2 neurons (Lava's LIF) =="
	qsnn-export $(LOIHI_MODEL) --target lava --strict --check-json out/fit-loihi.json -o out/
	@# the .net with lava-dl alone (netx + Lava's RingBuffers), the recipe qsnn-export wrote beside it (docs/lava.md)
	cd out && $(PYTHON) run_$(basename $(notdir $(LOIHI_MODEL))).py --data $(abspath $(DATA))/mnist -n 5 --check
	qsnn-verify $(LOIHI_MODEL) --data $(DATA)/mnist -n 1000 --steps 100 --backends torch,onnx,nir --strict --json out/verify-loihi.json
	qsnn-verify out/$(basename $(notdir $(LOIHI_MODEL))).net --data $(DATA)/mnist -n 200 --steps 100 --backends loihi,lava --strict --json out/verify-loihi-lava.json
	qsnn-report $(LOIHI_MODEL) --data $(DATA)/mnist -n 1000 --target lava --json out/report-loihi.json --html out/report-loihi.html
	@echo "== route 3: $(CUBA_MODEL) (qsnn-train --profile loihi --neuron cuba): current-based, on STOCK Loihi 2 LIF with its own du =="
	qsnn-export $(CUBA_MODEL) --target lava --strict --check-json out/fit-cuba.json -o out/
	cd out && $(PYTHON) run_$(basename $(notdir $(CUBA_MODEL))).py --data $(abspath $(DATA))/mnist -n 5 --check
	qsnn-verify $(CUBA_MODEL) --data $(DATA)/mnist -n 1000 --steps 100 --backends torch,onnx,nir --strict --json out/verify-cuba.json
	qsnn-verify out/$(basename $(notdir $(CUBA_MODEL))).net --data $(DATA)/mnist -n 200 --steps 100 --backends loihi,lava --strict --json out/verify-cuba-lava.json
	@echo "== route 4: $(XYLO_MODEL) (qsnn-train --profile xylo, MNIST rows over time): SynSense Xylo, run in the vendor's xylosim =="
	qsnn-export $(XYLO_MODEL) --target xylo --strict --check-json out/fit-xylo.json -o out/
	qsnn-verify $(XYLO_MODEL) --data $(DATA)/mnist -n 300 --backends torch,xylo --json out/verify-xylo.json
	qsnn-report $(XYLO_MODEL) --data $(DATA)/mnist -n 300 --target xylo --json out/report-xylo.json --html out/report-xylo.html
	@echo "route 1 ($(MODEL)): custom QLIF in Lava's simulator; route 2 ($(LOIHI_MODEL)): stock Loihi 2 LIF (see out/fit-loihi.json);"
	@echo "route 3 ($(CUBA_MODEL)): stock Loihi 2 LIF with a decaying current (see out/fit-cuba.json);"
	@echo "route 4 ($(XYLO_MODEL)): SynSense Xylo IMU spec out/$(basename $(notdir $(XYLO_MODEL))).npz, equal to xylosim (see out/fit-xylo.json)"

test: setup
	$(PYTHON) -m pytest -q -p no:cacheprovider

# the figures are also kept as JSON with the machine they ran on (bench/record.py); copy them to bench/results/
# under a name that says the CPU when a README or docs figure quotes them
BENCH_OUT ?= out/bench
bench: setup
	$(PYTHON) bench/bench_numpy_sim.py --json $(BENCH_OUT)/numpy_sim.json
	$(PYTHON) bench/bench_lava.py --json $(BENCH_OUT)/lava.json

clean:
	rm -rf out build *.egg-info .pytest_cache .hypothesis
