"""Find the inventory file when the user did not name one."""

from __future__ import annotations

import os
from pathlib import Path

from tui.core.errors import UserError
from tui.core.inventory.load import not_an_inventory
from tui.core.inventory.safefile import regular_problem


def default_candidates() -> list[Path]:
    """Where hardway looks for an inventory, in order."""
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [Path("hardway.toml"), config_home / "hardway" / "inventory.toml"]


def locate_inventory(explicit: str | Path | None) -> Path:
    """Return the inventory path to use.

    Args:
        explicit: the path given with ``-i``, if any (must exist).

    Raises:
        UserError: no file given and none found in the default places.
    """
    if explicit is not None:
        path = Path(explicit)
        problem = regular_problem(path)
        if problem is not None:
            raise UserError(not_an_inventory(path, problem))
        return path
    for candidate in default_candidates():
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(p) for p in default_candidates())
    raise UserError(
        f"no inventory given and none found (looked for {tried}). Pass one with "
        "-i FILE (examples in config/), or try the embedded lab with `hardway demo`."
    )
