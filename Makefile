# One command to run monitor, one to test it. Each creates .venv and installs into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench postgres chromium clean

run: $(STAMP)  ## set up, create the database and run the service with its web app on 127.0.0.1:8080 (SQLite, mail to var/outbox/)
	$(BIN)/monitor init
	$(BIN)/monitor run --web

test: $(STAMP) postgres chromium lint typecheck pytest  ## set up, then ruff, mypy and the whole test suite

lint: $(STAMP)
	$(BIN)/ruff check monitor tests benchmarks
	$(BIN)/ruff format --check monitor tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)  ## print throughput figures
	$(BIN)/python -m benchmarks

# The test suite runs against the PostgreSQL on 127.0.0.1:5432; start it when it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  command -v pg_ctlcluster >/dev/null && \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start && \
	  for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; } || \
	  echo "PostgreSQL is not running on 127.0.0.1:5432 and could not be started"

# The report screenshot and the web browser tests (Playwright, by executable path) drive
# Debian's Chromium headless; install it when it is missing.
chromium:
	@command -v chromium >/dev/null || { \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }; }; } || \
	  echo "Chromium is not installed and could not be installed: the report screenshot and web browser tests will skip"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
