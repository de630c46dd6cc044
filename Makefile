# NeuroRoute: `make run` serves the gateway, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint bench clean

$(STAMP): requirements.txt tests/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r tests/requirements.txt
	touch $(STAMP)

install: $(STAMP)

run: install
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python manage.py serve

lint: install
	$(BIN)/ruff check .

test: lint
	NEUROROUTE_ENV=test $(BIN)/python -m pytest -c tests/pytest.ini tests -q

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) db_data logs
