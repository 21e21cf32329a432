#!/usr/bin/env bash
# Command 2: set up and run every check: generated code current, buf lint and breaking
# (against ALEA_BREAKING_AGAINST, default the previous commit), ruff check and format, mypy, the test suite.
# PostgreSQL-backed tests need PostgreSQL's server binaries; as root they are installed if absent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test,lint
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing PostgreSQL server binaries for the integration tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
.venv/bin/python scripts/gen_protos.py --check
.venv/bin/buf lint
scripts/check_breaking.sh "${ALEA_BREAKING_AGAINST:-HEAD~1}"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy services bench
.venv/bin/python -m pytest "$@"
