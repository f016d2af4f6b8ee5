# Every target creates .venv (python3 -m venv) and installs what it needs, so on a fresh machine
# `make demo` and `make test` are the only commands a newcomer types.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test serve bench lint ci clean record-cassettes soak

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Stamps: reinstall only when pyproject.toml changes.
$(VENV)/.installed-runtime: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[postgres]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-runtime

demo: $(VENV)/.installed-runtime
	$(BIN)/feedbackloop demo

serve: $(VENV)/.installed-runtime
	$(BIN)/feedbackloop serve

# Two processes (this machine's cores) for the suite; then the reliability tests alone, because they time load and
# faults with servers and clients of their own.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 --ignore=tests/reliability
	$(BIN)/python -m pytest tests/reliability

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	# Security lint: bandit's findings are fixed or carry `# nosec BXXX  # why` on the line ([tool.bandit] in
	# pyproject.toml skips only B101, type-narrowing asserts). pip-audit asks PyPI's advisory data about every
	# installed dependency (network: lint, not tests); no --ignore-vuln is needed today (docs/reliability.md).
	$(BIN)/bandit -c pyproject.toml -r feedbackloop agents tools store prompts -q
	$(BIN)/pip-audit --skip-editable --progress-spinner off

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/stats.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/kpis.py
	$(BIN)/python bench/experiments.py
	$(BIN)/python bench/escalation.py
	$(BIN)/python bench/retro_eval.py

ci: lint test

# The long reliability variants: the load test at the issue's full size (8 Segment clients × 50,000 events, on
# SQLite and, with FEEDBACKLOOP_TEST_POSTGRES_URL set, PostgreSQL); figures as JSON in .feedbackloop/reliability/.
soak: $(VENV)/.installed-dev
	RELIABILITY_LOAD_EVENTS_PER_PROCESS=50000 RELIABILITY_FIGURES_DIR=.feedbackloop/reliability \
		$(BIN)/python -m pytest -s tests/reliability/test_load.py

# Re-record the LLM cassettes (tests/cassettes/) against the local OpenAI-compatible server; CI replays them.
record-cassettes: $(VENV)/.installed-dev
	../shared/tools/local-llm start
	$(BIN)/python -m pytest tests/agents/test_retro_llm_cassettes.py tests/agents/test_triage_llm_cassettes.py --record-mode=rewrite

clean:
	rm -rf $(VENV) .venv-gbstats .feedbackloop .pytest_cache .mypy_cache .ruff_cache
