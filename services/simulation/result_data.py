"""The stored results of a simulation, as the worker that merges its segments writes them.

``{"format": 2, "outputs": {key: statistics}, "reports": [report]}``; results stored before
reports existed are the outputs alone.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FORMAT", "parts"]

FORMAT = 2


def parts(data: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The outputs (key → statistics) and the reports of stored results, of either format."""
    if data.get("format") == FORMAT:
        return data["outputs"], data["reports"]
    return data, []
