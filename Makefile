# Set-up and everyday commands. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUNTIME := $(VENV)/.runtime

.PHONY: run test lint typecheck unit integration e2e chaos bench eval dashboard docs workers lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

## `make run` installs the runtime dependencies only; the test tools come with `make test`.
$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $(RUNTIME)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP) $(RUNTIME)

## Run the whole system on the configured stack (embedded default: no services needed).
run: $(RUNTIME)
	$(BIN)/pa run

## Lint, type checks and the whole suite: the unit, integration and e2e tiers on
## TEST_PROCESSES processes (each test has its own database, Redis prefix and files; an idle
## process steals tests queued for a busy one, `--dist worksteal`, so a few long tests do not
## end the tier on one process), then the chaos suite on its own (tests/chaos/run.sh: the
## scenarios that measure time one at a time, then those marked `concurrent` CHAOS_PROCESSES
## at a time).
## Exit code 5 (no test collected) counts as success.
TEST_PROCESSES ?= 4
CHAOS_PROCESSES ?= 3
export CHAOS_PROCESSES
test: $(STAMP) lint typecheck
	@fast=0; chaos=0; \
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist worksteal --ignore=tests/chaos --durations=15 || fast=$$?; \
	BIN=$(BIN) tests/chaos/run.sh --durations=25 || chaos=$$?; \
	for rc in $$fast $$chaos; do \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then exit $$rc; fi; \
	done

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e

## The fault-injection suite alone; prints the reliability table and writes docs/reliability.md.
chaos: $(STAMP)
	PA_CHAOS_WRITE_DOC=1 BIN=$(BIN) tests/chaos/run.sh

## Rewrite the parts of docs/ derived from the code (the queue and API references).
docs: $(STAMP)
	$(BIN)/python -m personal_assistant.workers.routing_docs docs/reference-queues.md
	$(BIN)/python -m personal_assistant.api.reference docs/reference-api.md

## Benchmarks: print figures, write docs/performance.md and its charts (needs PostgreSQL and
## Redis; installs the `bench` extra, matplotlib and Dramatiq, into the venv).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m benchmarks.run

## How well requests said in English are read (tests/unit/nl_cases.yaml, per construction):
## offline, and by the model too when AGENT=openai is configured; written to docs/nl-evaluation.md.
eval: $(STAMP)
	$(BIN)/python -m benchmarks.nl_eval --model --write docs/nl-evaluation.md
	$(BIN)/python -m benchmarks.nl_eval tests/unit/nl_holdout.yaml

## The dashboard's main panels drawn from a real scrape series (docs/img/dashboard.png); needs
## PostgreSQL and Redis, and installs matplotlib (the `plots` extra) into the venv.
dashboard: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,plots]'
	$(BIN)/python -m benchmarks.dashboard

## Start a worker and beat in the background, logs under logs/.
workers: $(STAMP)
	./tests/start_workers.sh

## Pin the runtime dependencies and the build backend, with hashes, in requirements.lock (used
## by docker/Dockerfile). Keeps the pins it has; `make lock LOCK_FLAGS=--upgrade` moves them all.
## uv goes into the venv only: it is no dependency of the package.
LOCK_FLAGS ?=
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | $(BIN)/uv pip compile pyproject.toml - --universal --python-version 3.11 --generate-hashes \
	    --custom-compile-command "make lock" --quiet $(LOCK_FLAGS) -o requirements.lock

clean:
	rm -rf $(VENV) var logs .pytest_cache .mypy_cache .ruff_cache
