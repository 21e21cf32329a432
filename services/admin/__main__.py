"""``python -m services.admin``: run the admin service."""

from services.admin.app import MIGRATIONS, build
from services.runtime.server import run

run("admin", build, MIGRATIONS)
