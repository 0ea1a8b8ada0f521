"""The inventory side of a VIP move: ``[api] vip`` rewritten in place, shown as a diff.

Only the value of the one ``vip = "..."`` line of the ``[api]`` table changes: comments,
order and every other line stay byte for byte.  The result is parsed again (TOML) and
must say the new VIP before it is written, atomically, with the file's mode kept.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tui.core.errors import UserError
from tui.core.pki.ca import write_atomic

_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\s*(?:#.*)?$")
_ARRAY = re.compile(r"^\s*\[\[")
_VIP = re.compile(r"""^(?P<head>\s*vip\s*=\s*)(?P<q>["'])(?P<value>[^"']*)(?P=q)(?P<tail>.*)$""")


@dataclass(frozen=True)
class InventoryEdit:
    """The inventory before and after the move.

    Attributes:
        path: the inventory file.
        old_text: its text now.
        new_text: its text with ``[api] vip`` set to the new VIP.
        line: the 1-based line that changes.
    """

    path: Path
    old_text: str
    new_text: str
    line: int

    @property
    def diff(self) -> str:
        """A unified diff of the change."""
        return "".join(difflib.unified_diff(
            self.old_text.splitlines(keepends=True), self.new_text.splitlines(keepends=True),
            fromfile=f"a/{self.path.name}", tofile=f"b/{self.path.name}"))


def edit_vip(path: Path, text: str, old_vip: str, new_vip: str) -> InventoryEdit:
    """Set ``[api] vip`` from ``old_vip`` to ``new_vip`` in ``text`` (the file at ``path``).

    Raises:
        UserError: no ``vip`` line in ``[api]``, it does not say ``old_vip``, or the edited
            text is no longer TOML with the new value.
    """
    lines = text.splitlines(keepends=True)
    table: str | None = None
    found: int | None = None
    for index, line in enumerate(lines):
        if _ARRAY.match(line):
            table = None
            continue
        heading = _TABLE.match(line)
        if heading:
            table = heading.group(1).strip().strip("\"'")
            continue
        if table == "api":
            match = _VIP.match(line.rstrip("\r\n"))
            if match:
                found = index
                break
    if found is None:
        raise UserError(f"{path}: no `vip = \"...\"` line in the [api] table, so the move "
                        f"cannot write the new VIP there; add `vip = \"{old_vip}\"` under "
                        "[api] (or run the move on an inventory that names its VIP).")
    line = lines[found]
    ending = line[len(line.rstrip("\r\n")):]
    match = _VIP.match(line.rstrip("\r\n"))
    assert match is not None
    if match["value"] != old_vip:
        raise UserError(f"{path}, line {found + 1}: [api] vip is {match['value']!r}, not "
                        f"{old_vip!r}: the file changed since it was read.")
    lines[found] = (f"{match['head']}{match['q']}{new_vip}{match['q']}{match['tail']}"
                    f"{ending}")
    new_text = "".join(lines)
    try:
        parsed = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: setting [api] vip breaks the file ({exc}); nothing was "
                        "written.") from None
    if parsed.get("api", {}).get("vip") != new_vip:
        raise UserError(f"{path}: after the edit [api] vip does not read {new_vip!r}; "
                        "nothing was written.")
    return InventoryEdit(Path(path), text, new_text, found + 1)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (temp file + rename), keeping its permission bits.

    Raises:
        UserError: the directory is not writable.
    """
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        mode = 0o644
    write_atomic(Path(path), text.encode(), mode)


__all__ = ["InventoryEdit", "edit_vip", "write_text_atomic"]
