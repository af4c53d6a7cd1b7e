# The two commands: `make run` (demo experiment) and `make test`. Each bootstraps .venv itself.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The unmodified Katib SDK lives in its own venv: its 0.19 models serialize right only with
# kubernetes 31, and it wants protobuf < 5 (tuner's venv has newer of both).
KATIB_SDK_VENV ?= .venv-katib-sdk
KATIB_SDK_STAMP := $(KATIB_SDK_VENV)/.installed

.PHONY: katib-sdk run test test-k8s test-conformance test-image lint typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev,examples,postgres,grpc]"
	touch $(STAMP)

run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/tuner run examples/digits-auto.yaml --db sqlite:///.tuner-demo.db --replace

$(KATIB_SDK_STAMP):
	$(PYTHON) -m venv $(KATIB_SDK_VENV)
	$(KATIB_SDK_VENV)/bin/python -m pip install --quiet "kubeflow-katib==0.19.0" "kubernetes==31.0.0"
	touch $(KATIB_SDK_STAMP)

katib-sdk: $(KATIB_SDK_STAMP)

# PYTEST_ARGS narrows a run, e.g. PYTEST_ARGS='-m "not k8s"' when test-k8s follows (.ci/run).
# The schemathesis run has its own target (test-conformance), so that `make test` stays quick.
# Two pytest-xdist workers, a test file each at a time (module fixtures stay shared): the suite
# mostly waits for the processes it starts, so on 2 cores it finishes in about two thirds of the
# time of one worker. PYTEST_WORKERS=0 runs it in one process.
PYTEST_ARGS ?= -m "not conformance"
PYTEST_WORKERS ?= 2
test: $(STAMP) $(KATIB_SDK_STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# schemathesis against a real `tuner serve` on SQLite and on PostgreSQL (bounded: ~2.5 min at most).
test-conformance: $(STAMP)
	$(BIN)/python -m pytest -m conformance tests/api/test_conformance.py -q

# A real kube-apiserver, controller-manager and etcd on loopback (tests/k8s/README in the script);
# the first build takes about 5 minutes and is cached under ~/.cache/tuner-k8s.
test-k8s: $(STAMP) $(KATIB_SDK_STAMP)
	bash tests/k8s/build-control-plane.sh
	$(BIN)/python -m pytest -m k8s tests/k8s -q

# The service image built (deploy/build-image.sh: a debootstrapped Debian base and a wheelhouse,
# cached under ~/.cache/tuner-image) and run: --version, /healthz and /metrics, non-root on a
# read-only root. It starts its own dockerd when none answers; it skips, saying why, where none can.
test-image: $(STAMP)
	TUNER_TEST_IMAGE=1 $(BIN)/python -m pytest -m image tests/ops/test_image.py -q -rs

lint: $(STAMP)
	$(BIN)/ruff check tuner algorithms tests examples bench
	$(BIN)/ruff format --check tuner algorithms tests examples bench

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(KATIB_SDK_VENV) .tuner-demo.db .pytest_cache .mypy_cache .ruff_cache
