"""``python -m services.identity``: run the identity service."""

from services.identity.app import MIGRATIONS, build
from services.runtime.server import run

run("identity", build, MIGRATIONS)
