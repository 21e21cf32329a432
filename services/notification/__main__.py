"""``python -m services.notification``: run the notification service."""

from services.notification.app import MIGRATIONS, build
from services.runtime.server import run

run("notification", build, MIGRATIONS)
