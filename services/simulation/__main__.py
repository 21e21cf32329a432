"""``python -m services.simulation [--worker]``: the simulation service, or a worker process."""

import sys

from services.simulation.service import main

main(sys.argv[1:])
