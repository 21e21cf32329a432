"""``python -m services.analytics``: run the analytics service."""

from services.analytics.app import MIGRATIONS, build
from services.runtime.server import run

run("analytics", build, MIGRATIONS)
