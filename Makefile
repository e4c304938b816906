# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install sysdeps bench-deps clean

demo: install
	$(VENV)/bin/edgekd build examples/cells.yaml

# Both cores: tests run in TEST_WORKERS processes, a test file's tests in one of them (its fixtures are shared),
# files handed out in collection order (the heaviest first: tests/conftest.py HEAVY_FIRST).
TEST_WORKERS ?= 2

test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

install: $(STAMP)

# System packages: g++ compiles the hls4ml C-simulation, tclsh runs generated Tcl under stubs, qemu-user
# runs the int8 ONNX test on an emulated AVX2-only CPU (onnxruntime's kernels differ without VNNI).
sysdeps:
	@if ! command -v g++ >/dev/null || ! command -v tclsh >/dev/null || ! command -v qemu-x86_64 >/dev/null; then \
		echo "installing g++, tcl and qemu-user with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ tcl qemu-user >/dev/null; \
	fi

# Benchmark-only system packages (not needed by `make test`): yosys for the open-synthesis calibration of
# narrow constant products (benchmarks/yosys_calibration.py).
bench-deps:
	@if ! command -v yosys >/dev/null; then \
		echo "installing yosys with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq yosys >/dev/null; \
	fi

$(STAMP): pyproject.toml constraints.txt | sysdeps
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf build .pytest_cache
