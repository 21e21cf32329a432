"""``python -m services.simulation [--worker]``: the simulation service, or a worker process."""

import sys

from services.runtime.server import run
from services.simulation.app import MIGRATIONS, build, build_workers

run("simulation", build_workers if "--worker" in sys.argv[1:] else build, MIGRATIONS)
