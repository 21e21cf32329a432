"""``python -m services.files``: serve; ``python -m services.files rotate-keys``: re-wrap keys."""

from __future__ import annotations

import sys

from services.files.app import main

sys.exit(main(sys.argv[1:]))
