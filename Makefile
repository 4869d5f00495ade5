# Cortex Hub: `make run` serves the hub, `make test` runs every test. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP_RUN := $(VENV)/.requirements.stamp
STAMP_DEV := $(VENV)/.requirements-dev.stamp
# pytest-xdist workers for `make test`: most tests wait on real processes (hubs, agents, Chromium),
# so one more worker than cores keeps both cores busy.
TEST_WORKERS ?= 3

.PHONY: run test vendor lint format proto bench bench-quick bench-full fuzz trust services-start services-stop clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP_RUN): requirements.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(STAMP_DEV): requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@ $(STAMP_RUN)

# The console's browser libraries (console/package.json, pinned by its lock file) copied into
# console/static/vendor/; npm ci runs again only when the lock file is newer than the install.
vendor:
	@cd console && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --silent; }
	@$(PYTHON) scripts/vendor_static.py

run: $(STAMP_RUN)
	@scripts/system-packages.sh run
	@$(MAKE) --no-print-directory vendor
	@mkdir -p -m 700 var && chmod 700 var
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py ensure_admin
	exec $(PY) manage.py serve

test: $(STAMP_DEV)
	@scripts/system-packages.sh test
	@# The real OIDC provider the accounts tests sign in through (npm oidc-provider, pinned by its lock file).
	@cd accounts/tests/oidc_provider && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --silent; }
	@$(MAKE) --no-print-directory vendor
	@mkdir -p var
	@set -o pipefail; scripts/services.sh start; \
	$(PY) -m pytest -n $(TEST_WORKERS); rc=$$?; \
	scripts/services.sh stop; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

# Lint, format check and type check (mypy reads [tool.mypy] in pyproject.toml).
lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP_DEV)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

proto: $(STAMP_DEV)
	$(PY) scripts/gen_proto.py

bench: $(STAMP_DEV)
	@scripts/system-packages.sh test
	@scripts/services.sh start; $(PY) -m bench; rc=$$?; scripts/services.sh stop; exit $$rc

bench-quick: $(STAMP_DEV)
	@scripts/system-packages.sh test
	@scripts/services.sh start; $(PY) -m bench --quick; rc=$$?; scripts/services.sh stop; exit $$rc

# The trust suite (tests/trust/ and the fault tests it cites); writes bench/trust.md.
trust: $(STAMP_DEV)
	@scripts/system-packages.sh test
	@mkdir -p var
	CORTEX_TRUST_PARTITION_S=$${CORTEX_TRUST_PARTITION_S:-30} $(PY) scripts/trust_report.py

# API fuzzing with more examples than `make test` runs (CORTEX_FUZZ_EXAMPLES, default 50).
fuzz: $(STAMP_DEV)
	@mkdir -p var
	CORTEX_FUZZ_EXAMPLES=$${CORTEX_FUZZ_EXAMPLES:-50} $(PY) -m pytest tests/trust/test_fuzz_api.py --no-cov -p no:cacheprovider -q

clean:
	rm -rf var/test-services .pytest_cache .coverage htmlcov
