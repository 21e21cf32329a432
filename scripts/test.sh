#!/usr/bin/env bash
# Command 2: set up and run every check: generated code current, buf lint and breaking
# (against ALEA_BREAKING_AGAINST, default the previous commit), ruff check and format, mypy, the test suite.
# PostgreSQL-backed tests need PostgreSQL's server binaries, the deployment test podman,
# buildah, runc and debootstrap; as root they are installed if absent (elsewhere those tests
# skip, naming what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test,lint
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing PostgreSQL server binaries for the integration tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
# The deployment test (tests/deploy) builds the image and runs the dev overlay as pods.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=$(for tool in podman buildah runc debootstrap; do command -v $tool >/dev/null || echo $tool; done)
  if [ -n "$missing" ]; then
    echo "Installing $(echo $missing) for the deployment test..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
fi
.venv/bin/python scripts/gen_protos.py --check
.venv/bin/buf lint
scripts/check_breaking.sh "${ALEA_BREAKING_AGAINST:-HEAD~1}"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy services bench
# Two workers (CI has 2 cores; ALEA_TEST_WORKERS changes it, 0 runs in this process); the
# groups they share the suite by are in tests/conftest.py.
.venv/bin/python -m pytest -n "${ALEA_TEST_WORKERS:-2}" --dist loadgroup "$@"
