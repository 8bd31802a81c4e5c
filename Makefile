# Meerkat: `make run` starts a single node on embedded defaults; `make test` runs every test.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint bench bench-compare bench-scale clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/meerkat

# The JS client tests (tests/js, @xmpp/client under Node) need their pinned dependencies.
JS_STAMP := tests/js/node_modules/.package-lock.json

$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund

test: $(STAMP) $(JS_STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

# Benchmarks (bench/README.md). BENCH_ARGS passes options, e.g. BENCH_ARGS="--quick --runs 1".
# make bench: Meerkat with one worker and with workers = 2, medians of 3 runs (~15-30 min).
bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

# The same scenarios against Prosody and ejabberd from Debian's packages, ratios per scenario.
bench-compare: $(STAMP)
	command -v prosody >/dev/null && command -v ejabberdctl >/dev/null || \
		(apt-get update -q && apt-get install -y -q prosody ejabberd)
	$(PY) bench/run.py --targets meerkat,meerkat-w2,prosody,ejabberd $(BENCH_ARGS)

# 100,000 concurrent TLS connections (8 workers, users in PostgreSQL; ~1 h here, ~16 GiB free).
bench-scale: $(STAMP)
	$(PY) bench/run.py --scenarios scale $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
