# In-between: `make demo` (the main job) and `make test` (the whole suite). Both install what is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench bench-quality gpu-inputs gpu-check clean

setup: $(STAMP)
	@scripts/install-system

# The venv sees Debian's QGIS, GDAL, pyproj, matplotlib and numpy (--system-site-packages).
$(STAMP): requirements.txt constraints.txt scripts/install-system
	scripts/install-system
	test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt -c constraints.txt
	touch $@

demo: setup
	scripts/demo

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

bench-quality: setup
	$(PY) -m bench.quality

bench: setup
	$(PY) -m bench.speed

# The GPU check runs in a plain CUDA PyTorch environment: python3 from PATH, not the venv (make gpu-check
# PY=... to choose another). Its inputs are .npy files that gpu-inputs writes with the venv (GDAL) from
# ../shared/data; copy gpu-inputs/ along to the card's machine.
GPU_INPUTS ?= gpu-inputs

gpu-inputs: setup
	$(PY) -m bench.gpu_inputs --out $(GPU_INPUTS)

gpu-check: PY = python3
gpu-check:
	$(PY) -m bench.gpu_check --inputs $(GPU_INPUTS)

clean:
	rm -rf demo-output .qgis-profile .pytest_cache
