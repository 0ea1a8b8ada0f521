"""A tiny systemd for one lab host: units from its unit directory, services run by the lab.

The :class:`Supervisor` of a host reads unit files from the host's unit directory (the
inventory's ``paths.systemd_units``, ``/etc/systemd/system``, mapped under the host root),
keeps enable/disable as ``*.wants`` symlinks there like systemctl, and runs each service's
``ExecStart`` as a child of the lab process -- not of an SSH session -- so it survives the
session that started it, restarts per ``Restart=``/``RestartSec=`` and is stopped with its
host (see :mod:`tui.lab.service`).  Output goes to the host's
:class:`~tui.lab.journal.Journal`, with systemd's own messages, including the load-time
warnings such as ``Unknown key name '--tls-cert-file' in section 'Service', ignoring.``

Paths in units are the host's own (``/usr/local/bin/kube-apiserver``): the executable is
looked up under the host root first, then -- for ``/bin``, ``/usr/bin`` and the ``sbin``
directories only -- on the machine running the lab.  Every service process carries
``HARDWAY_LAB_SERVICE=<host root>`` so the lab finds it even after a crash.

``systemctl`` and ``journalctl`` reach a supervisor through :mod:`tui.lab.systemctl`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from tui.lab import processes
from tui.lab.journal import Journal
from tui.lab.namespaces import readonly_paths
from tui.lab.service import (
    SEARCH_DIRS,
    SERVICE_MARKER,
    Service,
    ServiceError,
    ServiceHost,
    UnitDefinition,
    unit_name,
)
from tui.lab.systemd_unit import ExecCommand, ExecSyntaxError, parse_unit, split_exec

__all__ = ["HOST_FALLBACK_DIRS", "Service", "ServiceError", "ServiceHost", "Supervisor",
           "UnitDefinition", "unit_name"]

HOST_FALLBACK_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
"""System directories whose programs a unit may run from the machine running the lab."""


class Supervisor:
    """The service manager of one lab host (see the module docstring).

    Args:
        host: the host it serves.
    """

    def __init__(self, host: ServiceHost) -> None:
        self.host = host
        self.journal = Journal(host.name)
        self.services: dict[str, Service] = {}
        self.booted = False

    @property
    def units_path(self) -> Path:
        """The unit directory on disk."""
        return self.host.path(self.host.units_dir)

    # -- units --------------------------------------------------------------------------

    def load(self, name: str, *, quiet: bool = False) -> UnitDefinition:
        """Read unit ``name`` (and its drop-ins) from disk.

        Parse warnings go to the journal, as systemd logs them at load time, unless
        ``quiet`` (a peek that systemd would not log).
        """
        name = unit_name(name)
        logical = f"{self.host.units_dir.rstrip('/')}/{name}"
        path = self.units_path / name
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return UnitDefinition(name, "not-found")
        config = parse_unit(text, logical)
        fingerprint = [_stamp(path, logical)]
        dropins: list[str] = []
        dropin_dir = self.units_path / f"{name}.d"
        if dropin_dir.is_dir():
            for conf in sorted(dropin_dir.glob("*.conf")):
                conf_logical = f"{logical}.d/{conf.name}"
                with contextlib.suppress(OSError):
                    config.extend(parse_unit(conf.read_text(encoding="utf-8",
                                                            errors="replace"), conf_logical))
                    dropins.append(conf_logical)
                    fingerprint.append(_stamp(conf, conf_logical))
        if not quiet:
            for warning in config.warnings:
                self.journal.systemd(name, str(warning))
        definition = UnitDefinition(name, "loaded", fragment=logical, dropins=tuple(dropins),
                                    config=config, fingerprint=tuple(fingerprint))
        self._check(definition, quiet=quiet)
        return definition

    def _check(self, definition: UnitDefinition, *, quiet: bool) -> None:
        """Parse ExecStart= and refuse what systemd refuses (load state bad-setting)."""
        config = definition.config
        assert config is not None
        commands: list[ExecCommand] = []
        for value in config.values("Service", "ExecStart"):
            try:
                commands.append(split_exec(value, unit_name=definition.name,
                                           hostname=self.host.name))
            except ExecSyntaxError as exc:
                line = config.line_of("Service", "ExecStart")
                if not quiet:
                    self.journal.systemd(definition.name,
                                         f"{definition.fragment}:{line}: {exc}")
        definition.exec_start = tuple(commands)
        problem = ""
        if not commands:
            problem = "Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing."
        elif len(commands) > 1 and definition.service_type != "oneshot":
            problem = ("Service has more than one ExecStart= setting, which is only allowed "
                       "for Type=oneshot services. Refusing.")
        if problem:
            definition.load_state = "bad-setting"
            if not quiet:
                self.journal.systemd(definition.name, f"{definition.name}: {problem}")

    def unit_files(self) -> list[str]:
        """Names of the unit files in the unit directory, sorted."""
        try:
            return sorted(p.name for p in self.units_path.iterdir()
                          if p.is_file() and not p.is_symlink() and "." in p.name
                          and not p.name.startswith("."))
        except OSError:
            return []

    def service(self, name: str) -> Service:
        """The service for unit ``name``, loading it from disk when it is new or missing."""
        name = unit_name(name)
        service = self.services.get(name)
        if service is None or (service.definition.load_state == "not-found"
                               and not service.running):
            definition = self.load(name)
            if service is None:
                service = Service(self, definition)
                if definition.load_state != "not-found":
                    self.services[name] = service
            else:
                service.definition = definition
        return service

    def changed_on_disk(self, name: str) -> bool:
        """True when the unit's files changed since they were loaded (daemon-reload needed)."""
        service = self.services.get(unit_name(name))
        if service is None or service.definition.load_state == "not-found":
            return False
        definition = service.definition
        current = [_stamp(self.host.path(p), p) for p in (definition.fragment,
                                                          *definition.dropins)]
        dropin_dir = self.units_path / f"{definition.name}.d"
        if dropin_dir.is_dir() and len(list(dropin_dir.glob("*.conf"))) != len(
                definition.dropins):
            return True
        return tuple(current) != definition.fingerprint

    def daemon_reload(self) -> None:
        """Reload every unit file (running services keep running with the new settings)."""
        self.journal.systemd(None, "Reloading.")
        names = set(self.unit_files()) | set(self.services)
        for name in sorted(names):
            definition = self.load(name)
            service = self.services.get(name)
            if service is not None:
                service.definition = definition
            elif definition.load_state != "not-found":
                self.services[name] = Service(self, definition)

    # -- enablement ---------------------------------------------------------------------

    def enabled_in(self, name: str) -> list[Path]:
        """The ``*.wants``/``*.requires`` links that enable unit ``name``."""
        name = unit_name(name)
        try:
            dirs = [d for d in self.units_path.iterdir()
                    if d.is_dir() and d.name.endswith((".wants", ".requires"))]
        except OSError:
            return []
        return [d / name for d in sorted(dirs) if os.path.lexists(d / name)]

    def is_enabled(self, name: str) -> str:
        """``enabled``, ``disabled``, ``static`` or ``not-found``."""
        if self.enabled_in(name):
            return "enabled"
        definition = self.load_quietly(name)
        if definition.load_state == "not-found":
            return "not-found"
        return "disabled" if definition.has_install else "static"

    def load_quietly(self, name: str) -> UnitDefinition:
        """The loaded definition when known, else read from disk without journal lines."""
        service = self.services.get(unit_name(name))
        if service is not None:
            return service.definition
        return self.load(name, quiet=True)

    def enable(self, name: str) -> list[str]:
        """Link the unit into its ``WantedBy=`` targets; returns systemctl's messages."""
        name = unit_name(name)
        definition = self.load_quietly(name)
        if definition.load_state == "not-found":
            raise ServiceError(f"Failed to enable unit: Unit file {name} does not exist.", 1)
        if not definition.has_install:
            return ["The unit files have no installation config (WantedBy=, RequiredBy=, "
                    "Also=,\nAlias= settings in the [Install] section, and DefaultInstance= "
                    "for template\nunits). This means they are not meant to be enabled or "
                    "disabled using systemctl."]
        messages = []
        units_dir = self.host.units_dir.rstrip("/")
        for target in definition.wanted_by:
            wants = self.units_path / f"{target}.wants"
            link = wants / name
            if os.path.lexists(link):
                continue
            wants.mkdir(parents=True, exist_ok=True)
            os.symlink(f"../{name}", link)
            messages.append(f"Created symlink {units_dir}/{target}.wants/{name} \u2192 "
                            f"{units_dir}/{name}.")
        return messages

    def disable(self, name: str) -> list[str]:
        """Remove every link enabling the unit; returns systemctl's messages."""
        messages = []
        for link in self.enabled_in(name):
            link.unlink()
            logical = f"{self.host.units_dir.rstrip('/')}/{link.parent.name}/{link.name}"
            messages.append(f'Removed "{logical}".')
        return messages

    # -- running ------------------------------------------------------------------------

    def resolve_executable(self, path: str) -> Path | None:
        """Where the program of an ``ExecStart=`` lives on the machine running the lab."""
        candidates = [path] if path.startswith("/") else [f"{d}/{path}" for d in SEARCH_DIRS]
        for logical in candidates:
            mapped = self.host.path(logical)
            if mapped.is_file():
                return mapped
        shared: tuple[str, ...] = HOST_FALLBACK_DIRS
        if self.host.confined is not None:  # what a confined host sees of the machine
            shared = (*shared, *readonly_paths())
        for logical in candidates:
            if logical.startswith(tuple(d.rstrip("/") + "/" for d in shared)) \
                    and Path(logical).is_file():
                return Path(logical)
        return None

    async def start(self, name: str) -> None:
        """Start unit ``name`` (ServiceError when it cannot be)."""
        await self.service(name).start()

    async def stop(self, name: str) -> None:
        """Stop unit ``name`` (ServiceError when it is not loaded)."""
        service = self.services.get(unit_name(name))
        if service is None:
            if self.load_quietly(name).load_state == "not-found":
                raise ServiceError(f"Unit {unit_name(name)} not loaded.", 5)
            return
        await service.stop()

    async def restart(self, name: str) -> None:
        """Restart unit ``name``."""
        await self.service(name).restart()

    async def boot(self) -> None:
        """The host comes up: load every unit, then start the enabled ones."""
        self.booted = True
        self.daemon_reload()
        enabled = [name for name in self.unit_files() if self.enabled_in(name)]
        for name in enabled:
            with contextlib.suppress(ServiceError):
                await self.start(name)

    async def shutdown(self) -> None:
        """The host goes down: stop every service, then kill what is left of them."""
        self.booted = False
        await asyncio.gather(*(s.close() for s in self.services.values()),
                             return_exceptions=True)
        await processes.kill_marked(self.host.root, marker=SERVICE_MARKER)
        self.services.clear()  # a reboot forgets states and restart counters, not the journal

    def pids(self) -> list[int]:
        """Live processes of this host's services (main processes and their children)."""
        return processes.marked_pids(self.host.root, marker=SERVICE_MARKER)


def _stamp(path: Path, logical: str) -> tuple[str, int, int]:
    try:
        info = path.stat()
    except OSError:
        return (logical, 0, -1)
    return (logical, info.st_mtime_ns, info.st_size)
