# aec: make demo (install + pack/unpack the example digits), make test (install + pytest), make lint (ruff).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= demo-out
AEC_DATA ?= $(abspath ../shared/data/mnist)
export AEC_DATA

.PHONY: demo test test-fast lint install install-dev figure bench clean fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs the package itself (not editable), as a user would.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[train,dev,cluster]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	@rm -rf $(DEMO_OUT) && mkdir -p $(DEMO_OUT)
	$(BIN)/aec pack examples/digits -o $(DEMO_OUT)/digits.aec
	$(BIN)/aec unpack $(DEMO_OUT)/digits.aec -o $(DEMO_OUT)/digits
	$(BIN)/aec info $(DEMO_OUT)/digits.aec
	$(BIN)/python -m benchmarks.rd.compare_folders examples/digits $(DEMO_OUT)/digits $(DEMO_OUT)/digits.aec
	@echo "--- the same with --effort 1 (slower pack: searched latents, better pictures, no more bytes):"
	$(BIN)/aec pack examples/digits -o $(DEMO_OUT)/digits-e1.aec --effort 1
	$(BIN)/aec unpack $(DEMO_OUT)/digits-e1.aec -o $(DEMO_OUT)/digits-e1
	$(BIN)/python -m benchmarks.rd.compare_folders examples/digits $(DEMO_OUT)/digits-e1 $(DEMO_OUT)/digits-e1.aec

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

# Unused imports, undefined names, syntax errors.
# ruff: pyflakes, syntax errors and import order (pyproject.toml), then the formatter's verdict.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m "not slow"

# The README picture: originals above reconstructions by the shipped model.
figure: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.rd.figure --out docs/reconstructions.png

bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.rd.mnist_testset

clean:
	rm -rf $(DEMO_OUT) build *.egg-info .pytest_cache

# Coverage-guided fuzzing (atheris) of the container reader, the model-file reader and pack's input
# readers, FUZZ_SECONDS each. Findings land in fuzz-corpus/artifacts/; inputs on which libhdf5 itself spins or
# crashes (what the model reader's child process contains) in fuzz-corpus/hdf5-findings/.
FUZZ_SECONDS ?= 60
fuzz: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet atheris
	mkdir -p fuzz-corpus/artifacts
	$(BIN)/python tests/fuzz/make_corpus.py fuzz-corpus/container container
	$(BIN)/python tests/fuzz/make_corpus.py fuzz-corpus/model model
	$(BIN)/python tests/fuzz/make_corpus.py fuzz-corpus/inputs inputs
	$(BIN)/python tests/fuzz/fuzz_container.py fuzz-corpus/container -max_total_time=$(FUZZ_SECONDS) -timeout=2 \
		-rss_limit_mb=1024 -artifact_prefix=fuzz-corpus/artifacts/container-
	AEC_FUZZ_HDF5_FINDINGS=fuzz-corpus/hdf5-findings $(BIN)/python tests/fuzz/fuzz_model.py fuzz-corpus/model \
		-max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 -artifact_prefix=fuzz-corpus/artifacts/model-
	$(BIN)/python tests/fuzz/fuzz_inputs.py fuzz-corpus/inputs -max_total_time=$(FUZZ_SECONDS) -timeout=5 \
		-rss_limit_mb=1024 -artifact_prefix=fuzz-corpus/artifacts/inputs-
