# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CLIENTS := .venv-clients
CLIENTS_STAMP := $(CLIENTS)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: install clients bytecode browser run test bench soak lint clean

# Re-installs only when pyproject.toml changes.
install: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q -e '.[mlx]' || echo "mlx[cpu] could not be installed here: the real mlx_lm.server tests will skip"
	touch $(STAMP)

# Clients whose pins exclude the project's own (instructor): their own venv, run by the tests.
clients: $(CLIENTS_STAMP)
$(CLIENTS_STAMP): tests/clients/requirements.txt
	test -x $(CLIENTS)/bin/python || $(PYTHON) -m venv $(CLIENTS)
	$(CLIENTS)/bin/python -m pip install -q -r tests/clients/requirements.txt
	touch $(CLIENTS_STAMP)

# pip compiles the dependencies' bytecode, not an editable install's: under
# PYTHONDONTWRITEBYTECODE=1 (common in containers and CI) every start, and every server a test
# spawns, would compile src/ (and the bench and test helper processes) again: ~0.3-0.5 s of a
# cold start here. Up-to-date files are skipped.
bytecode:
	$(BIN)/python -m compileall -q src bench tests

run: install bytecode
	$(BIN)/llm-backends token ensure
	$(BIN)/llm-backends serve --host $(HOST) --port $(PORT)

# The admin page's tests drive Debian's chromium: installed when missing, as root (CI is root;
# elsewhere without it the page tests skip).
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

test: install clients browser bytecode
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests bench

bench: install bytecode
	$(BIN)/python -m bench.run $(BENCH_ARGS)

soak: install
	$(BIN)/python -m bench.soak $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(CLIENTS) build *.egg-info src/*.egg-info
	find src bench tests -name __pycache__ -prune -exec rm -rf {} +
