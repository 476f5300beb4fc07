# In-between: `make demo` (the main job) and `make test` (the whole suite). Both install what is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
QT6CHECK := $(VENV)/qt6check/.installed

.PHONY: setup demo test bench bench-quality gpu-inputs gpu-check package clean

setup: $(STAMP) $(QT6CHECK)
	@scripts/install-system

# The venv sees Debian's QGIS, GDAL, pyproj, matplotlib and numpy (--system-site-packages).
$(STAMP): requirements.txt constraints.txt scripts/install-system
	scripts/install-system
	test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt -c constraints.txt
	touch $@

# QGIS's Qt 6 migration checker in a venv of its own, without Debian's site-packages (requirements-qt6check.txt).
$(QT6CHECK): requirements-qt6check.txt $(STAMP)
	test -x $(VENV)/qt6check/bin/python || /usr/bin/python3 -m venv $(VENV)/qt6check
	$(VENV)/qt6check/bin/python -m pip install --disable-pip-version-check -q --ignore-requires-python -r requirements-qt6check.txt
	touch $@

demo: setup
	scripts/demo

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

# The zip for the QGIS plugin repository (and Plugins → Install from ZIP): needs only Python 3.
package:
	python3 scripts/package.py dist

# the development benchmark (bench/quality.py): one table; e.g. make bench-quality ARGS="--quick --seeds 0"
bench-quality: setup
	OMP_NUM_THREADS=1 $(PY) -m bench.quality $(ARGS)

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
