#!/usr/bin/env bash
# Command 1: set up, start the whole mesh (Envoy + every service, SQLite), run the demo through the edge.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/alea up
.venv/bin/alea demo
echo
echo "The mesh is still running: '.venv/bin/alea status' shows it, '.venv/bin/alea down' stops it."
