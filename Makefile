# The two entry points: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format venv clean bench-loader bench-sentinel bench-verify bench-ui system-packages

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m include.demo

test: $(STAMP) system-packages lint
	$(BIN)/python -m pytest --durations=20

# Debian's PostgreSQL links ICU (pgserver's build does not): the sentinel's collation tests start one.
# Debian's Chromium and its driver: the operator page's browser test (Selenium drives /usr/bin/chromium).
# Installed once, when missing; nothing is started as a service.
system-packages:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "installing Debian's postgresql (ICU collations for the sentinel tests)"; \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) \
			apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
		echo "installing Debian's chromium and chromium-driver (the operator page's browser test)"; \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) \
			apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench-loader: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(BIN)/python bench/loader_bench.py --sizes 5000000 20000000 --changes 1000000

bench-verify: $(STAMP)
	$(BIN)/python bench/verify_bench.py --rows 1000000

bench-sentinel: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(BIN)/python bench/sentinel_bench.py --rows 1000000 --percent 0.01
	$(BIN)/python bench/sentinel_bench.py --rows 5000000 --percent 0.01 --skip naive
	$(BIN)/python bench/sentinel_bench.py --rows 1000000 --percent 1 10 --skip naive

bench-ui: $(STAMP)
	$(BIN)/python bench/ui_bench.py --repeat 30

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .local
