# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
export FLASK_APP := app.py

.PHONY: run test venv lint demo clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

## Run web, worker, beat and flower on the embedded defaults (SQLite + filesystem broker)
## under supervisor, which restarts a crashed process (utils/process_manager.py).
run: venv
	mkdir -p instance
	$(BIN)/flask db upgrade
	PORT=$(PORT) PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m utils.process_manager run web worker beat flower

## Run the test suite (TEST_DATABASE_URL / TEST_REDIS_URL select PostgreSQL / Redis).
test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) instance test-output
