"""The Workbench: the one composition root of the engine (Textual-free).

Everything a view needs is opened here, once, and closed here, in reverse order::

    inventory ─▶ host-key policy ─▶ audit log ─▶ Fleet ─┬─▶ ShellRelay ─▶ RelayFleet ─▶ Console
                                                        └─▶ engines (certs, etcd, health;
                                                            dns, lb next), opened lazily

The relay and its RelayFleet see the fleet through a ``FleetSource`` that answers from
the inventory until the fleet is built (:class:`_FleetSource`): the console's shells open
without loading asyncssh in this process, while :meth:`Workbench.load_fleet` loads it on
a worker thread.

``hardway run``, ``hardway certs`` and the app all build a :class:`Workbench` and use
its parts; none of them wires a fleet, a policy or a relay of its own.  Where is the
console's SSH relay started?  :meth:`Workbench.start_console` (the relay process is
prestarted there, then the console connects every host and opens its shells).

Engines
-------
A use case that several views share (the certificate flow today; the etcd bootstrap,
DNS, VIP and health engines next) is an *engine*: a plain object built from the
workbench by a factory named in :data:`ENGINES` (``"module:function"``), imported and
built the first time a view asks for it (:meth:`Workbench.engine`), so start-up pays
nothing for the screens that are never opened.  An engine with an ``aclose()``
coroutine is closed with the workbench.  To add one::

    # tui/core/etcd/engine.py
    def open_engine(workbench: Workbench) -> EtcdWork: ...

    # here
    ENGINES["etcd"] = "tui.core.etcd.engine:open_engine"

and give it a typed accessor below (like :attr:`Workbench.certs`).

Events
------
Views follow the workbench through one listener type (:class:`WorkbenchEvent`,
delivered by :class:`tui.core.events.Listeners`): fleet state changes, console changes
and actions starting and ending.  A listener that raises is logged (the log file), never
raised into the engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from tui.core import logfile
from tui.core.audit import AuditLog
from tui.core.errors import UserError
from tui.core.events import Listener, Listeners
from tui.core.fleet.events import ConnState, StateChanged
from tui.core.inventory.model import Host, Inventory

LIST_TIMEOUT = 5.0
"""Seconds a host may take to list a directory for Tab in the bar."""

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from tui.core.console import Console
    from tui.core.console.complete import FileCompletion
    from tui.core.console.events import ConsoleChanged
    from tui.core.console.shells import ShellFleet
    from tui.core.fleet.fleet import Fleet
    from tui.core.fleet.hostkeys import Decision, HostKeyPolicy, HostKeyPrompt
    from tui.core.fleet.relay import ShellRelay
    from tui.core.fleet.relaylaunch import RelayProcess, RelaySpec
    from tui.core.fleet.sftp import PutResult
    from tui.core.health.engine import HealthWork
    from tui.core.pki.usecase import CertificateWork

log = logging.getLogger("hardway.workbench")

HostKeyMode = Literal["strict", "accept-new", "ask"]
"""Unknown host keys: refused (``strict``, the CLI's default), recorded with a notice
(``accept-new``), or a question to the user (``ask``, the app's default; see
:meth:`Workbench.ask_host_keys_with`).  A changed key is always refused."""

ENGINES: dict[str, str] = {
    "certs": "tui.core.pki.usecase:open_engine",
    "etcd": "tui.core.etcd.engine:open_engine",
    "health": "tui.core.health.engine:open_engine",
    "vip": "tui.core.lb.move:open_engine",
}
"""Engine name -> ``module:factory``; the factory takes the workbench (see the module
docstring)."""


class ActionPhase(StrEnum):
    """Where a long action (connect, reconnect, issue, push, restore) is."""

    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"


@dataclass(frozen=True)
class ActionEvent:
    """A long action started or ended (views show progress from these).

    Attributes:
        action: ``connect``, ``reconnect``, ``issue``, ``push``, ``restore``...
        phase: started, finished or failed.
        detail: the hosts concerned, or why it failed.
    """

    action: str
    phase: ActionPhase
    detail: str = ""


@dataclass(frozen=True)
class InventoryChanged:
    """The inventory file was rewritten by an engine (a VIP move or its rollback) and read
    again: views showing its values (the VIP, the API name) read them anew.

    Attributes:
        inventory: the inventory as now read.
        what: what changed, in a few words (``api.vip 10.10.0.100 -> 10.50.0.1``).
    """

    inventory: Inventory
    what: str


if TYPE_CHECKING:
    WorkbenchEvent = StateChanged | ConsoleChanged | ActionEvent | InventoryChanged
    """Everything a workbench listener receives."""
else:  # the console (and asyncssh) load after the first frame, not with this module
    WorkbenchEvent = object


class _FleetSource:
    """The workbench's fleet as the console's relay sees it
    (:class:`~tui.core.fleet.relay.FleetSource`): answered from the inventory until the
    fleet exists, so that the console's shells open without loading asyncssh in the app."""

    def __init__(self, workbench: Workbench) -> None:
        self._workbench = workbench
        self.audit: AuditLog | None = workbench.audit
        self._hosts: dict[str, Host] | None = None

    def host(self, name: str) -> Host:
        """The fleet's host called ``name`` (UserError as the fleet words it)."""
        fleet = self._workbench._fleet
        if fleet is not None:
            return fleet.host(name)
        from tui.core.fleet.defaults import fleet_hosts, host_named

        if self._hosts is None:
            workbench = self._workbench
            self._hosts = {h.name: h for h in fleet_hosts(workbench.inventory,
                                                          workbench.extra_hosts)}
        return host_named(self._hosts, name)

    def endpoint(self, name: str) -> str:
        """``address:port`` dialled for ``name`` (the fleet's, once it resolved it)."""
        fleet = self._workbench._fleet
        if fleet is not None:
            return fleet.endpoint(name)
        host = self.host(name)
        return f"{host.dial}:{host.ssh.port}"

    def relay_spec(self) -> RelaySpec:
        """What the fleet would be built from (:meth:`Workbench.relay_spec`)."""
        return self._workbench.relay_spec()

    def session_keys(self) -> list[tuple[str, int, str]]:
        """Keys the user accepted for this session (none before the policy exists)."""
        policy = self._workbench._policy
        return policy.session_keys() if policy is not None else []

    def built(self) -> Fleet | None:
        """The fleet, if built."""
        return self._workbench._fleet

    async def load(self) -> Fleet:
        """The fleet (:meth:`Workbench.load_fleet`)."""
        return await self._workbench.load_fleet()

    def subscribe(self, callback: Callable[[StateChanged], None]) -> Callable[[], None]:
        """The fleet's StateChanged events, through the workbench's listeners (so a
        subscription made before the fleet exists follows it once it does)."""
        def states(event: object) -> None:
            if isinstance(event, StateChanged):
                callback(event)

        return self._workbench.subscribe(states)


class Workbench:
    """The engine, assembled (see the module docstring).

    Use it as ``async with Workbench(inventory) as workbench:``; parts are built on first
    use and closed on exit.

    Args:
        inventory: the loaded cluster description.
        host_keys: how unknown host keys are handled (see :data:`HostKeyMode`).
        notify: where ``accept-new`` reports a recorded key (the CLI's stderr).
        audit_path: the audit log (default: the XDG state dir).
        pki_dir: the local PKI directory (default: ``pki/`` beside the inventory).
        connect_timeout: seconds to connect to one host.
        fanout: at most this many connection attempts at a time.
        user_ssh_files: read ``~/.ssh/config`` and ``~/.ssh/known_hosts`` (tests turn
            this off to stay hermetic).
        relay: console shells in the SSH relay process (off: on the fleet's own
            connections, in this process).
        extra_hosts: hosts outside the inventory's list the fleet must reach (``dns``
            gives the zone file's host when it is the hypervisor).
    """

    def __init__(self, inventory: Inventory, *, host_keys: HostKeyMode = "strict",
                 notify: Callable[[str], None] | None = None,
                 audit_path: Path | None = None, pki_dir: Path | None = None,
                 connect_timeout: float = 10.0, fanout: int = 64,
                 user_ssh_files: bool = True, relay: bool = True,
                 redial: tuple[float, ...] | None = None,
                 extra_hosts: Sequence[Host] = ()) -> None:
        self.inventory = inventory
        self.extra_hosts = tuple(extra_hosts)
        """Hosts the fleet reaches beyond the inventory's (the zone file's host)."""
        self.redial = redial
        """Backoff of the console's automatic reconnect of dropped hosts (None: the
        console's default; empty: off)."""
        self.host_key_mode: HostKeyMode = host_keys
        self.audit = AuditLog.for_inventory(inventory, audit_path, pki=pki_dir)
        self._fleet_options = {"notify": notify, "user_ssh_files": user_ssh_files,
                               "connect_timeout": connect_timeout, "fanout": fanout}
        self._fanout, self._connect_timeout = fanout, connect_timeout
        self._user_ssh_files = user_ssh_files
        self._fleet: Fleet | None = None
        self._policy: HostKeyPolicy | None = None
        self._ask: Callable[[HostKeyPrompt], Awaitable[Decision]] | None = None
        self.pki_dir = Path(pki_dir) if pki_dir is not None else inventory.path.parent / "pki"
        self._use_relay = relay
        self._relay: ShellRelay | None = None
        self._early_relay: asyncio.Future[RelayProcess] | None = None
        self._console: Console | None = None
        self._engines: dict[str, object] = {}
        self._listeners: Listeners[WorkbenchEvent] = Listeners("workbench")
        self._unsubscribe: list[Callable[[], None]] = []
        self._closed = False
        self._console_stopped = False
        self._unredact = logfile.add_redactor(self.audit.redact)

    @classmethod
    def from_path(cls, path: str | Path | None, **kwargs: object) -> Workbench:
        """Locate (``-i`` or the defaults) and load the inventory, then build the workbench.

        Raises:
            UserError: no inventory found, or it does not load.
        """
        from tui.core.inventory.load import load_inventory
        from tui.core.inventory.locate import locate_inventory

        inventory = load_inventory(locate_inventory(None if path is None else str(path)))
        return cls(inventory, **kwargs)  # type: ignore[arg-type]

    async def __aenter__(self) -> Workbench:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # -- the fleet (built on first use: asyncssh loads after the app's first frame) ---------

    @property
    def policy(self) -> HostKeyPolicy:
        """The host-key policy of every connection."""
        if self._policy is None:
            from tui.core.fleet.hostkeys import HostKeyPolicy

            options = self._fleet_options
            self._policy = HostKeyPolicy(
                mode="strict" if self.host_key_mode == "strict" else "accept-new",
                notify=options["notify"],  # type: ignore[arg-type]
                user_files=bool(options["user_ssh_files"]))
            if self.host_key_mode == "ask":
                self._policy.confirm = self._ask
        return self._policy

    @property
    def fleet(self) -> Fleet:
        """The SSH connections to every host (not connected until asked)."""
        if self._fleet is None:
            from tui.core.fleet.fleet import Fleet

            options = self._fleet_options
            self._fleet = Fleet.from_inventory(
                self.inventory, extra=self.extra_hosts, host_keys=self.policy,
                audit=self.audit,
                connect_timeout=options["connect_timeout"], fanout=options["fanout"],
                use_user_config=options["user_ssh_files"])
            self._unsubscribe.append(self._fleet.subscribe(self._listeners.emit))
        return self._fleet

    async def load_fleet(self) -> Fleet:
        """The fleet, built now if need be, with its modules (asyncssh: ~0.2 s of
        imports) loaded on a worker thread so that the UI loop keeps drawing and taking
        keys meanwhile."""
        if self._fleet is None:
            await asyncio.to_thread(importlib.import_module, "tui.core.fleet.fleet")
        return self.fleet

    def relay_spec(self) -> RelaySpec:
        """What the relay builds its fleet from: this workbench's fleet, described without
        building it (same hosts, options and host-key files)."""
        from tui.core.fleet.relaylaunch import RelaySpec

        return RelaySpec.for_inventory(
            self.inventory, fanout=self._fanout, connect_timeout=self._connect_timeout,
            user_ssh_files=self._user_ssh_files, extra=self.extra_hosts)

    # -- events -----------------------------------------------------------------------------

    def subscribe(self, listener: Listener[WorkbenchEvent]) -> Callable[[], None]:
        """Call ``listener`` with every :data:`WorkbenchEvent`; returns its unsubscribe."""
        return self._listeners.subscribe(listener)

    def emit(self, event: WorkbenchEvent) -> None:
        """Tell every listener (a use case reporting an action's progress)."""
        self._listeners.emit(event)

    # -- host keys --------------------------------------------------------------------------

    def ask_host_keys_with(self, ask: Callable[[HostKeyPrompt], Awaitable[Decision]]) -> None:
        """In ``ask`` mode, put each unknown host key to ``ask`` (the app's modal)."""
        if self.host_key_mode == "ask":
            self._ask = ask
            if self._policy is not None:
                self._policy.confirm = ask

    # -- hosts ------------------------------------------------------------------------------

    async def connect(self, names: Iterable[str] | None = None) -> dict[str, ConnState]:
        """Connect the fleet to ``names`` (default all); failures become states."""
        return await self.fleet.connect(names)

    def counts(self) -> tuple[int, int, int]:
        """(connected, failed, all) hosts of the inventory: a host is connected when the
        fleet's connection or its console shell is open."""
        names = [h.name for h in self.inventory.hosts]
        live = set(self.live_hosts())
        fleet = self._fleet
        failed = 0 if fleet is None else sum(
            fleet.state(n) == ConnState.FAILED for n in names if n not in live)
        return len(live), failed, len(names)

    async def put_local(self, local_path: str, path: str, names: Iterable[str], *,
                        substitute_values: bool = False) -> list[PutResult]:
        """Copy the local file ``local_path`` to ``path`` on each of ``names`` (atomically,
        its mode kept, the previous version kept as a backup, audited); ``{name}``-style
        placeholders in ``path`` always, in the content when ``substitute_values``.

        Raises:
            UserError: the local file cannot be sent or a remote path is not absolute.
        """
        from tui.core.console.sendfile import put_text, read_local, remote_path

        local = read_local(local_path)
        jobs = []
        for name in names:
            host = self.inventory.host(name)
            jobs.append(self.fleet.put(name, put_text(local, host, substitute_values),
                                       remote_path(path, host), mode=local.mode))
        return list(await asyncio.gather(*jobs))

    async def complete_file(self, line: str, cursor: int) -> FileCompletion | None:
        """Tab on a file name in the bar: complete it from a listing of the first host of
        the broadcast set (over SFTP, at most :data:`LIST_TIMEOUT` seconds); None when the
        word before ``cursor`` is not a file name."""
        from tui.core.console.complete import (
            Completion,
            FileCompletion,
            complete_file,
            file_query,
        )

        query = file_query(line, cursor)
        if query is None:
            return None
        members = self.console.broadcast_set.members
        host = members[0] if members else self.inventory.hosts[0].name
        try:
            entries = await asyncio.wait_for(self.fleet.list_dir(host, query.directory),
                                             LIST_TIMEOUT)
        except UserError as exc:
            return FileCompletion(Completion(line, cursor), host, str(exc))
        except TimeoutError:
            return FileCompletion(Completion(line, cursor), host,
                                  f"{host} did not list {query.directory} within "
                                  f"{LIST_TIMEOUT:g} s.")
        return FileCompletion(complete_file(line, cursor, query, entries), host)

    def live_hosts(self) -> list[str]:
        """Hosts with a live SSH connection or console shell (what quitting would close)."""
        fleet, console = self._fleet, self._console
        return [h.name for h in self.inventory.hosts
                if (fleet is not None and fleet.state(h.name) == ConnState.READY)
                or (console is not None and console.shell(h.name) is not None)]

    def shell_counts(self) -> tuple[int, int] | None:
        """(open console shells, hosts), or None before the console exists: connections
        and shells are two states (a host may be connected with its shell exited)."""
        console = self._console
        if console is None:
            return None
        return sum(console.shell(h) is not None for h in console.hosts), len(console.hosts)

    # -- the console ------------------------------------------------------------------------

    @property
    def relay(self) -> ShellRelay | None:
        """The console's SSH relay (None until the console is built, or without a relay)."""
        return self._relay

    @property
    def shell_fleet(self) -> ShellFleet:
        """What the console opens shells through: the relay's fleet (built on first use),
        or the fleet itself without a relay."""
        if not self._use_relay:
            return self.fleet
        from tui.core.fleet.relay import RelayFleet, ShellRelay

        source = _FleetSource(self)
        if self._relay is None:
            early, self._early_relay = self._early_relay, None
            self._relay = ShellRelay(source, early=early)
        return RelayFleet(source, self._relay)

    @property
    def console(self) -> Console:
        """The console model (built on first use, with the history file of the XDG state
        dir and the audit log's redaction)."""
        if self._console is None:
            if self._console_stopped:
                raise UserError("The console of this workbench was stopped; open a new "
                                "workbench to start another.")
            from tui.core.console import Console, History
            from tui.core.console.history import default_path

            history = History(default_path(), redact=self.audit.redact)
            self._console = Console(self.inventory, self.shell_fleet, history=history)
            if self.redial is not None:
                self._console.set_redial(self.redial)
            self._unsubscribe.append(self._console.subscribe(self._listeners.emit))
        return self._console

    def warm_relay(self) -> None:
        """Start the relay process before the app imports Textual (the spawn runs on the
        loop's next turn: :meth:`relay_spawned` waits for it), so its interpreter and
        asyncssh load on the other core meanwhile, and have it connect every host at
        once: the console (built after the first frame) opens its shells on those
        connections.  Does nothing without a relay or when one exists."""
        if not self._use_relay or self._relay is not None or self._early_relay is not None \
                or self._console_stopped:
            return
        from tui.core.fleet.relaylaunch import launch

        spec = dataclasses.replace(self.relay_spec(),
                                   preconnect=tuple(h.name for h in self.inventory.hosts))
        self._early_relay = asyncio.ensure_future(launch(spec))

    async def relay_spawned(self) -> None:
        """Wait until the relay process :meth:`warm_relay` started exists (its INIT sent;
        at once without one).  :meth:`warm_relay` only schedules the spawn: a caller that
        goes on with a long synchronous step (importing Textual) would otherwise start the
        relay after it, and the relay's own start is what the shells wait for."""
        early = self._early_relay
        if early is not None:
            await asyncio.wait([early])  # a failure stays in the future for the console

    def prestart_relay(self) -> None:
        """Start the relay process in the background (its interpreter takes ~0.5 s), so it
        is up when the first shell opens; failures surface on that shell."""
        console = self.console  # builds the relay
        del console
        if self._relay is not None:
            self._relay.prestart()

    async def start_console(self) -> None:
        """Start the relay, connect every host, open a shell on each (never raises per
        host: a host that fails shows its reason in its status)."""
        self.prestart_relay()
        self.emit(ActionEvent("connect", ActionPhase.STARTED, "every host"))
        results = await self.console.start()
        failed = [r.host for r in results.values() if not r.ok]
        self.emit(ActionEvent("connect", ActionPhase.FINISHED, ", ".join(failed)))

    # -- engines ----------------------------------------------------------------------------

    def reload_inventory(self, what: str = "") -> Inventory:
        """Read the inventory file again after an engine rewrote it, hand the new one to
        every engine built so far that takes it (``inventory_changed``), and tell the
        views (:class:`InventoryChanged`).  The fleet keeps its hosts: a rewrite that
        changes hosts needs a new workbench.

        Raises:
            UserError: the file cannot be read or is no longer valid (the old inventory
                stays in use).
        """
        from tui.core.inventory.load import load_inventory

        before = self.inventory
        inventory = load_inventory(before.path)
        self.inventory = inventory
        if not what and before.api.vip != inventory.api.vip:
            what = f"api.vip {before.api.vip} -> {inventory.api.vip}"
        for engine in self._engines.values():
            changed = getattr(engine, "inventory_changed", None)
            if changed is not None:
                changed(inventory)
        self.emit(InventoryChanged(inventory, what))
        return inventory

    def engine(self, name: str) -> object:
        """The engine called ``name``, imported and built on first use.

        Raises:
            KeyError: no engine of that name in :data:`ENGINES`.
        """
        if name not in self._engines:
            module_name, _, factory = ENGINES[name].partition(":")
            module = importlib.import_module(module_name)
            self._engines[name] = getattr(module, factory)(self)
        return self._engines[name]

    @property
    def certs(self) -> CertificateWork:
        """Certificate survey, issue, push and restore."""
        from tui.core.pki.usecase import CertificateWork

        work = self.engine("certs")
        assert isinstance(work, CertificateWork)
        return work

    @property
    def health(self) -> HealthWork:
        """Health polling, its transition log and the VIP guard."""
        from tui.core.health.engine import HealthWork

        work = self.engine("health")
        assert isinstance(work, HealthWork)
        return work

    # -- closing ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Close engines, the console, the relay and the fleet (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for name, engine in reversed(list(self._engines.items())):
            aclose = getattr(engine, "aclose", None)
            if aclose is not None:
                try:
                    result = aclose()
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("closing the %s engine failed", name)
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        await self.stop_console()
        if self._fleet is not None:
            await self._fleet.close()
        self._unredact()

    async def stop_console(self) -> None:
        """Close the console's shells and stop the relay process (idempotent)."""
        console, self._console = self._console, None
        relay, self._relay = self._relay, None
        early, self._early_relay = self._early_relay, None
        self._console_stopped = True
        if early is not None:
            from tui.core.fleet.relaylaunch import discard_early

            await discard_early(early)
        if console is not None:
            await console.close()
        if relay is not None:
            await relay.stop()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed
