# In-between: `make demo` (the main job) and `make test` (the whole suite). Both install what is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench bench-quality clean

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

# the development benchmark (bench/quality.py): one table; e.g. make bench-quality ARGS="--quick --seeds 0"
bench-quality: setup
	OMP_NUM_THREADS=1 $(PY) -m bench.quality $(ARGS)

bench: setup
	$(PY) -m bench.speed

clean:
	rm -rf demo-output .qgis-profile .pytest_cache
