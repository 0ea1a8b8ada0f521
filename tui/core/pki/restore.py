"""Undo the last certificate push: the record of what changed, and the restore plan.

The rollout records every change in ``PKI/last-push.json`` (paths and services only, never
contents) after staging the new files and before replacing any (the backups are linked
while staging), so a push interrupted at any moment is undone whole.
:func:`build_restore` turns that record into a rolling plan that
moves each ``NAME.hardway-bak`` back over ``NAME`` (or removes a file the push created),
runs daemon-reload when a unit file comes back, and restarts the services concerned,
waiting for each to answer its health probe (liveness only: the files put back may hold
the self-signed certificate the push replaced).
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tui.core.errors import UserError
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.sftp import BACKUP_SUFFIX
from tui.core.fleet.staged import read_journal, settle, sweep_temps
from tui.core.inventory.model import Inventory
from tui.core.pki.ca import write_atomic
from tui.core.pki.services import (
    RESTART_ORDER,
    RolloutOptions,
    ServiceProbes,
    remote,
    sudo_for,
)
from tui.core.pki.survey import remote_path
from tui.core.plan import Plan, Preview, Step

__all__ = ["MANIFEST_FILE", "PushEntry", "PushManifest", "build_restore", "journaled_hosts"]

MANIFEST_FILE = "last-push.json"


@dataclass(frozen=True)
class PushEntry:
    """One change of a push on one host.

    Attributes:
        path: logical path of the file changed.
        services: services that read it (restarted after a restore).
        backup: a previous version was kept as ``PATH.hardway-bak`` (False: the push
            created the file, so restoring removes it).
    """

    path: str
    services: tuple[str, ...]
    backup: bool

    @property
    def unit(self) -> bool:
        """True for a systemd unit file (a restore then needs daemon-reload)."""
        return self.path.endswith(".service")


class PushManifest:
    """What the last push changed on each host (``PKI/last-push.json``; paths only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._hosts: dict[str, list[PushEntry]] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text())
                self._hosts = {
                    str(host): [PushEntry(str(e["path"]), tuple(e["services"]),
                                          bool(e["backup"])) for e in entries]
                    for host, entries in data.get("hosts", {}).items()}
            except (OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
                raise UserError(f"{path} is not a readable push record ({exc}); move it "
                                "away to start afresh.") from None

    def entries(self, host: str) -> list[PushEntry]:
        """The changes recorded for ``host`` (oldest first)."""
        return list(self._hosts.get(host, []))

    @property
    def hosts(self) -> list[str]:
        """Hosts with recorded changes."""
        return [h for h, v in self._hosts.items() if v]

    def clear(self, host: str) -> None:
        """Forget ``host``'s changes (a new push or a restore started there)."""
        if self._hosts.pop(host, None) is not None:
            self.save()

    def record(self, host: str, path: str, services: Iterable[str], *, backup: bool) -> None:
        """Remember that ``path`` changed on ``host`` (saved at once)."""
        entries = self._hosts.setdefault(host, [])
        previous = next((e for e in entries if e.path == path), None)
        if previous is not None:  # the first backup is the state before this push
            backup = previous.backup
        entries[:] = [e for e in entries if e.path != path]
        entries.append(PushEntry(path, tuple(sorted(set(services))), backup))
        self.save()

    def save(self) -> None:
        """Write the record atomically (0600)."""
        hosts = {h: [{"path": e.path, "services": list(e.services), "backup": e.backup}
                     for e in entries] for h, entries in self._hosts.items()}
        data = {"updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "hosts": hosts}
        write_atomic(self.path, (json.dumps(data, indent=2) + "\n").encode(), 0o600)


class _Restore:
    """The restore plan's state (see :func:`build_restore`)."""

    def __init__(self, inventory: Inventory, fleet: Fleet, pki_dir: Path,
                 names: Sequence[str] | None, options: RolloutOptions,
                 journaled: Iterable[str] = ()) -> None:
        self.inventory = inventory
        self.fleet = fleet
        self.options = options
        self.manifest = PushManifest(Path(pki_dir) / MANIFEST_FILE)
        recorded = self.manifest.hosts
        wanted = list(names) if names is not None else [h.name for h in inventory.hosts]
        interrupted = set(journaled)
        self.names = [n for n in wanted if n in recorded or n in interrupted]
        self._entries = {n: self.manifest.entries(n) for n in self.names}
        # etcd wants a client certificate even for /health: the local kubernetes pair
        # (signed by the same CA as the restored one); the server is not verified.
        pair = [Path(pki_dir) / n for n in ("kubernetes.pem", "kubernetes-key.pem")]
        self.probes = ServiceProbes(
            inventory, fleet, options,
            etcd_pair=(pair[0].read_bytes(), pair[1].read_bytes())
            if all(p.is_file() for p in pair) else None)

    def services(self, name: str) -> set[str]:
        return {s for e in self._entries[name] for s in e.services}

    def commands(self, name: str) -> list[str]:
        host = self.inventory.host(name)
        lines = []
        for entry in self._entries[name]:
            target = remote_path(host, entry.path)
            if entry.backup:
                lines.append(f"mv -f {shlex.quote(target + BACKUP_SUFFIX)} "
                             f"{shlex.quote(target)}")
            else:
                lines.append(f"rm -f {shlex.quote(target)}")
        if any(e.unit for e in self._entries[name]):
            lines.append("systemctl daemon-reload")
        return lines

    def plan(self) -> Plan:
        steps = [Step("restore backups", self.names, preview=self._preview,
                      apply=self._apply)]
        for service in RESTART_ORDER:
            hosts = [n for n in self.names if service in self.services(n)]
            if hosts:
                steps.append(self._restart(service, hosts))
        return Plan(steps, mode="rolling")

    async def _preview(self, name: str) -> Preview:
        return Preview(commands=tuple(self._prefixed(c, name) for c in self.commands(name)),
                       notes=("an interrupted push's journal and staged files are removed "
                              "first, when there are any",))

    def _sudo(self, name: str) -> bool:
        return sudo_for(self.fleet, name, self.options)

    def _prefixed(self, command: str, name: str) -> str:
        return f"sudo {command}" if self._sudo(name) else command

    async def _apply(self, name: str) -> str:
        host = self.inventory.host(name)
        sudo = self._sudo(name)
        settled = await settle(self.fleet, name, sudo=sudo)  # an interrupted push: its temps
        swept = await sweep_temps(self.fleet, name, [e.path for e in self._entries[name]],
                                  sudo=sudo)
        missing = []
        for entry in self._entries[name]:
            target = remote_path(host, entry.path)
            if entry.backup:
                # a push interrupted before its switch left the backup as a hard link of
                # the (unchanged) file: nothing to put back, drop the link
                backup, quoted = shlex.quote(target + BACKUP_SUFFIX), shlex.quote(target)
                script = (f"if [ -e {backup} ]; then if [ {backup} -ef {quoted} ]; then "
                          f"rm -f {backup}; else mv -f {backup} {quoted}; fi; "
                          "else echo missing; fi")
            else:
                script = f"rm -f {shlex.quote(target)}"
            out = await remote(self.fleet, name, script, sudo=sudo,
                               timeout=self.options.command_timeout)
            if out.strip() == "missing":
                missing.append(entry.path)
        if any(e.unit for e in self._entries[name]):
            await remote(self.fleet, name, "systemctl daemon-reload", sudo=sudo,
                         timeout=self.options.command_timeout)
        self.manifest.clear(name)
        count = len(self._entries[name]) - len(missing)
        detail = f"{count} file{'s' if count != 1 else ''} put back"
        if missing:
            detail += f"; no backup of {', '.join(missing)}"
        if settled is not None:
            detail += "; the interrupted push's journal and staged files removed"
        if swept:
            detail += f"; removed {len(swept)} leftover temp file{'s' * (len(swept) != 1)}"
        return detail

    def _restart(self, service: str, hosts: list[str]) -> Step:
        async def apply(name: str) -> str:
            await remote(self.fleet, name, f"systemctl restart {service}",
                         sudo=self._sudo(name), timeout=self.options.command_timeout)
            return ""

        async def verify(name: str) -> str:
            return await self.probes.wait(service, name, verified=False)

        async def preview(name: str) -> Preview:
            return Preview(commands=(self._prefixed(f"systemctl restart {service}", name),),
                           notes=(f"then wait up to {self.options.health_timeout:g} s for "
                                  f"{self.probes.describe(service, name, verified=False)}",))

        return Step(f"restart {service}", hosts, preview=preview, apply=apply, verify=verify)


def build_restore(inventory: Inventory, fleet: Fleet, pki_dir: Path, *,
                  names: Sequence[str] | None = None,
                  options: RolloutOptions | None = None,
                  journaled: Iterable[str] = ()) -> Plan:
    """A rolling plan that puts back what the last push changed on ``names``.

    Hosts without a recorded change are left out, except those in ``journaled`` (an
    interrupted push's journal is there, see :func:`journaled_hosts`: the restore removes
    it and its staged files, even when the push was killed before it recorded anything);
    the plan is empty when there is nothing to restore.  Restarted services are checked
    for liveness only (the old certificates may be the self-signed ones the push replaced).
    """
    return _Restore(inventory, fleet, pki_dir, names, options or RolloutOptions(),
                    journaled).plan()


async def journaled_hosts(fleet: Fleet, names: Iterable[str],
                          options: RolloutOptions | None = None) -> list[str]:
    """Those of ``names`` holding an interrupted push's journal (unreachable hosts and
    unreadable journals count as none: the restore's own steps then say why)."""
    found = []
    for name in names:
        try:
            sudo = sudo_for(fleet, name, options or RolloutOptions())
            if await read_journal(fleet, name, sudo=sudo) is not None:
                found.append(name)
        except UserError:
            continue
    return found
