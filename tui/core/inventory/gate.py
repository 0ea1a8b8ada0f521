"""The lint gate: commands that touch hosts refuse an inventory that lint calls wrong.

``hardway run``, ``certs check/push``, the app and every later command that connects
call :func:`require_runnable` first.  A lint *error* (duplicate names or addresses, an
address outside ``networks.nodes``, a name that is host-set syntax or holds shell
metacharacters, a jump host that does not exist or is the host itself, an OpenSSH
config that includes itself...) makes output attribution ambiguous or runs something
unintended, so it stops the command before any connection, with the whole list.
"""

from __future__ import annotations

from collections.abc import Collection

from tui.core.inventory.lint import lint
from tui.core.inventory.load import InventoryError
from tui.core.inventory.model import Finding, Inventory


class InventoryNotRunnable(InventoryError):
    """The inventory has lint errors; ``findings`` are all of them (errors first)."""

    def __init__(self, message: str, findings: list[Finding]) -> None:
        super().__init__(message)
        self.findings = findings


def require_runnable(inventory: Inventory, command: str = "this command", *,
                     allow: Collection[str] = ()) -> list[Finding]:
    """Refuse ``inventory`` when lint finds an error; return the other findings otherwise.

    Args:
        inventory: the loaded inventory.
        command: what is refused, for the message (``run``, ``certs push``).
        allow: keys whose errors this command can live with (it is the way to fix them:
            ``api.vip`` for ``vip move`` and the app's DNS/VIP screen); they are returned.

    Raises:
        InventoryNotRunnable: at least one lint error (exit status 2); the message lists
            every error, each naming the key and the value.
    """
    findings = lint(inventory)
    errors = [f for f in findings if f.severity == "error" and f.key not in allow]
    if not errors:
        return findings
    count = f"{len(errors)} error" + ("" if len(errors) == 1 else "s")
    lines = [f"{inventory.path}: {command} refused: the inventory has {count} (hardway "
             f"inventory check {inventory.path} explains them all); fix them first:"]
    lines += [f"  - {finding.key}: {finding.message}" for finding in errors]
    raise InventoryNotRunnable("\n".join(lines), findings)
