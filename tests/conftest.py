"""How the suite is shared between pytest-xdist workers (``scripts/test.sh``: ``-n 2 --dist
loadgroup``).

Each test gets an ``xdist_group`` (one worker runs a group's tests, in collection order)
unless it names its own:

- a test of the whole mesh (the session ``mesh`` fixture) joins ``mesh-<database>``: each
  worker starts one mesh, not both, and the two meshes run side by side;
- every other test joins its file's group, so that a module's fixtures start once and its
  tests keep their order (some follow from the one before, e.g. ``alea up --services``
  adding a service that the next test kills).

Everything a worker starts binds free ports under its own temporary directories, so the
groups need nothing else to run side by side.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # An xdist worker is told by ``loadgroup``; without xdist (or in its controller) there
    # is nothing to group.
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        callspec = getattr(item, "callspec", None)
        database = callspec.params.get("mesh") if callspec is not None else None
        group = f"mesh-{database}" if database else item.location[0]
        item.add_marker(pytest.mark.xdist_group(group))
