"""The embedded lab: N controllers and M workers as asyncssh servers on loopback.

``Lab`` runs on the caller's event loop; ``LabRunner`` runs one on a background thread
with its own loop (tests, ``hardway demo``)::

    with LabRunner(Path("/tmp/lab"), controllers=3) as runner:
        inv = load_inventory(runner.lab.inventory_path)
        ...                                   # connect with the Fleet like any cluster
        runner.call(runner.lab.stop_host, "controller-1")

Layout of DIR (mode 0700; nothing is written outside it)::

    id_ed25519, id_ed25519.pub   the client key the lab hosts accept
    hostkeys/NAME                each host's ed25519 key (reused across restarts)
    known_hosts                  [127.0.10.10]:2222 ssh-ed25519 ...
    ssh_config                   Host blocks for `ssh -F DIR/ssh_config controller-0`
    inventory.toml               the cluster description for every hardway command
    pki/                         the cluster CA and KTHW certificates (``--pki`` default)
    hosts/NAME/                  the host's root: etc/ var/lib/ var/run/ usr/local/bin/
                                 root/ (HOME) tmp/ lab-bin/ (shims such as `hostname`,
                                 `systemctl`, `journalctl`)

Every host has a service supervisor behind ``systemctl`` (:mod:`tui.lab.supervisor`).
With ``services=True`` (the default) the lab also writes a KTHW cluster before the hosts
boot -- the PKI, each host's certificates and, on every controller, an enabled
kube-apiserver unit running the stand-in -- shaped by a scenario
(:mod:`tui.lab.scenarios`), and :meth:`Lab.start` returns once every API server serves.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import fcntl
import getpass
import ipaddress
import os
import threading
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import IO, Any, TypeVar

from tui.core.errors import UserError
from tui.core.inventory.load import load_inventory
from tui.lab import (
    cluster,
    etcd_release,
    files,
    hypervisor,
    namespaces,
    processes,
    scenarios,
)
from tui.lab.namespaces import Confinement, HostNetwork
from tui.lab.pki_setup import PKI_DIR
from tui.lab.server import LabHost, LabHostSpec
from tui.lab.service import SERVICE_MARKER, ServiceHost
from tui.lab.supervisor import Supervisor

T = TypeVar("T")

MAX_CONTROLLERS = 100
MAX_WORKERS = 100
MAX_HOSTS = 100
ISOLATIONS = ("auto", "namespaces", "none")
HYPERVISOR = "nucklehead"
"""The seed's hypervisor: the jump host, the API VIP's load balancer."""
NODE_NET = "10.10.0"
"""The node block inside a confined lab (the seed's 10.10.0.0/24)."""
VIP = "10.50.0.1"
"""The API VIP of a confined lab, in its control-plane services block 10.50.0.0/24."""
CONTROL_PLANE_BLOCK = "10.50.0.0/24"
"""A confined lab's control-plane services block: the hypervisor takes all of it (a VIP
moved to another address of the block reaches its ipfw rules at once)."""


def _host_entries(specs: list[LabHostSpec]) -> list[tuple[str, str]]:
    """(address, name) of every lab host, for each host's /etc/hosts."""
    return [(spec.address, spec.name) for spec in specs]


def _current_user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return getpass.getuser()


def _check_network(network: str) -> str:
    parts = network.split(".")
    ok = len(parts) == 3 and all(p.isdigit() and int(p) <= 255 for p in parts)
    if not ok or parts[0] != "127":
        raise UserError(
            f"The lab network {network!r} is not usable: give the first three octets of a "
            "loopback /24, such as 127.0.10 (hosts then get 127.0.10.10, 127.0.10.11, ...)."
        )
    return ".".join(str(int(p)) for p in parts)


class Lab:
    """A running set of lab hosts, each with its own sshd, root and host key.

    Args:
        directory: where everything lives (created 0700).
        controllers: number of controllers, at NETWORK.10+i.
        workers: number of workers, at NETWORK.20+i.
        network: first three octets of a loopback /24.
        port: the sshd port of every host.
        shared_address: listen on 127.0.0.1 with ports ``port+i`` instead of one address
            per host (chosen automatically where 127.0.x.y cannot be bound).
        services: write the cluster (PKI, certificates, kube-apiserver units) and run its
            services; False gives bare hosts (``systemctl`` still works).
        scenario: the state the cluster starts in (``healthy``, ``seed-cert-bug``, ...).
        serve: start only these hosts' servers (default: all).  The files still describe
            every host, so a lab can be spread over processes: each process serves some
            hosts from its own directory holding copies of the same keys (the benchmark
            gives each host a process, as real hosts have machines of their own).
        isolation: ``namespaces`` confines every host in its own mount, PID, UTS and
            network namespaces on a private network (10.10.0.0/24) behind the hypervisor
            ``nucklehead``, the jump host, whose sshd also listens on NETWORK.1:PORT;
            ``none`` is the fallback: hosts share the machine's network on NETWORK.10+i
            and see the machine's files, each with its own root directory prefix;
            ``auto`` confines where the system allows it and says so otherwise.
    """

    def __init__(self, directory: Path, controllers: int = 3, workers: int = 0, *,
                 network: str = "127.0.10", port: int = 2222,
                 shared_address: bool = False, services: bool = True,
                 scenario: str = scenarios.DEFAULT,
                 serve: Collection[str] | None = None, isolation: str = "none") -> None:
        if isolation not in ISOLATIONS:
            raise UserError(f"The lab isolation must be one of {', '.join(ISOLATIONS)}, "
                            f"not {isolation!r}.")
        if controllers + workers > MAX_HOSTS:
            raise UserError(f"The lab takes at most {MAX_HOSTS} hosts in all "
                            f"(--controllers {controllers} + --workers {workers}).")
        if not 1 <= controllers <= MAX_CONTROLLERS:
            raise UserError(f"The lab needs 1 to {MAX_CONTROLLERS} controllers "
                            f"(--controllers), not {controllers}.")
        if not 0 <= workers <= MAX_WORKERS:
            raise UserError(f"The lab takes 0 to {MAX_WORKERS} workers (--workers), "
                            f"not {workers}.")
        if not 1 <= port <= 65535 - controllers - workers:
            raise UserError(f"The lab port (--port) must be a TCP port, not {port}.")
        self.directory = Path(directory).absolute()
        self.network = _check_network(network)
        self.port = port
        self.user = _current_user()
        self.shared_address = shared_address
        self.scenario = scenarios.scenario_named(scenario)
        if not services and self.scenario.name != scenarios.DEFAULT:
            raise UserError(f"The lab scenario {self.scenario.name!r} needs the lab's "
                            "services; drop --no-services or the --scenario.")
        self.services = services
        self.services_running = False
        self.isolation = isolation
        self.confined = False
        self._confinement: Confinement | None = None
        self.notes: list[str] = []
        self._counts = (controllers, workers)
        self._hosts: dict[str, LabHost] = {}
        self._lock: IO[str] | None = None
        self._serve = None if serve is None else frozenset(serve)
        unknown = sorted(self._serve - set(self.names)) if self._serve is not None else []
        if unknown:
            raise UserError(f"The lab has no host called {unknown[0]!r} to serve; it has "
                            f"{', '.join(self.names)}.")

    # -- paths --------------------------------------------------------------------------

    @property
    def inventory_path(self) -> Path:
        """DIR/inventory.toml."""
        return self.directory / "inventory.toml"

    @property
    def ssh_config_path(self) -> Path:
        """DIR/ssh_config (OpenSSH client config)."""
        return self.directory / "ssh_config"

    @property
    def known_hosts_path(self) -> Path:
        """DIR/known_hosts (every lab host key)."""
        return self.directory / "known_hosts"

    @property
    def client_key_path(self) -> Path:
        """DIR/id_ed25519 (the private key the lab accepts)."""
        return self.directory / "id_ed25519"

    @property
    def pki_directory(self) -> Path:
        """DIR/pki: the cluster CA and certificates (``pki/`` beside the inventory)."""
        return self.directory / PKI_DIR

    def host_root(self, name: str) -> Path:
        """The root directory of lab host ``name``."""
        return self.directory / "hosts" / name

    @property
    def names(self) -> list[str]:
        """Host names, controllers first (then the hypervisor of a confined lab)."""
        return [spec.name for spec in self.specs()]

    @property
    def hosts(self) -> list[LabHostSpec]:
        """Where each host lives and listens (valid after :meth:`start`)."""
        return [host.spec for host in self._hosts.values()]

    def specs(self) -> list[LabHostSpec]:
        """The host specs this lab would start (or has started)."""
        if self._hosts:
            return self.hosts
        return self._plan(self.shared_address)

    def _plan(self, shared: bool) -> list[LabHostSpec]:
        controllers, workers = self._counts
        first_worker = 20 if controllers <= 10 else 10 + controllers
        named = [(f"controller-{i}", "controller", 10 + i) for i in range(controllers)]
        named += [(f"worker-{i}", "worker", first_worker + i) for i in range(workers)]
        if self.confined:
            specs = [LabHostSpec(name=name, role=role, address=f"{NODE_NET}.{octet}",
                                 listen=f"{NODE_NET}.{octet}", port=22,
                                 root=self.host_root(name))
                     for name, role, octet in named]
            specs.append(LabHostSpec(name=HYPERVISOR, role="hypervisor",
                                     address=f"{NODE_NET}.1", listen=f"{NODE_NET}.1", port=22,
                                     root=self.host_root(HYPERVISOR),
                                     door=(f"{self.network}.1", self.port)))
            return specs
        specs = []
        for index, (name, role, octet) in enumerate(named):
            address = f"{self.network}.{octet}"
            specs.append(LabHostSpec(
                name=name, role=role, address=address,
                listen="127.0.0.1" if shared else address,
                port=self.port + index if shared else self.port,
                root=self.host_root(name)))
        return specs

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Create the directory and files, then start every host's sshd."""
        if self._hosts:
            return
        self._prepare_directory()
        try:
            self._choose_isolation()
            release = self._build_release()
            client_key = files.load_or_create_key(self.client_key_path, "hardway-lab-client")
            specs = self._plan(self.shared_address)
            if not self.confined and not self.shared_address and \
                    not _can_bind(specs[0].listen):
                self.shared_address = True
                specs = self._plan(True)
                self.notes.append(
                    f"This system cannot bind {specs[0].address}: every lab host listens on "
                    f"127.0.0.1 with its own port ({self.port}..{specs[-1].port}) instead.")
            (self.directory / "hostkeys").mkdir(mode=0o700, exist_ok=True)
            keys = {}
            for spec in specs:
                files.prepare_root(spec)
                await processes.kill_marked(spec.root)  # leftovers of a killed lab
                await processes.kill_marked(spec.root, marker=SERVICE_MARKER)
                keys[spec.name] = files.load_or_create_key(
                    self.directory / "hostkeys" / spec.name, f"hardway-lab {spec.name}")
            self._write_client_files(specs, keys)
            if self.confined:
                files.prepare_confined(specs, _host_entries(specs))
                await self._confine(specs)
            if release is not None:
                await release
            environments, units_dir = self._prepare_services()
            for spec in specs:
                if self._serve is not None and spec.name not in self._serve:
                    continue
                handle = self._confinement.handle(spec.name) if self._confinement else None
                supervisor = Supervisor(ServiceHost(
                    spec.name, spec.root, spec.address, environments.get(spec.name, {}),
                    units_dir, confined=handle))
                self._hosts[spec.name] = LabHost(spec, keys[spec.name], client_key,
                                                 "root" if self.confined else self.user,
                                                 supervisor=supervisor, confined=handle)
            results = await asyncio.gather(*(host.start() for host in self._hosts.values()),
                                           return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            await self._wait_for_services()
            for name in self._down_hosts():
                if name in self._hosts:
                    await self.stop_host(name)
            if self.services_running:
                await self.scenario.after_start(self)
        except BaseException:
            await self.stop()
            raise

    def _build_release(self) -> asyncio.Future[etcd_release.EtcdRelease | None] | None:
        """Build the etcd release tarball in a thread (zlib leaves the GIL) while the
        namespaces come up, when the scenario installs or leaves etcd (None otherwise)."""
        stage = self.scenario.stage
        if not self.services or not (self.confined or stage in ("certs-pushed", "etcd-up")):
            return None
        built = asyncio.ensure_future(asyncio.to_thread(etcd_release.ensure_release,
                                                        self.directory))
        built.add_done_callback(lambda f: f.cancelled() or f.exception())  # seen if unused
        return built

    def _choose_isolation(self) -> None:
        """Decide whether hosts are confined (``isolation``), noting why not in one line."""
        if self.isolation == "none":
            return
        reason = namespaces.unavailable()
        if reason is None:
            self.confined = True
            return
        if self.isolation == "namespaces":
            raise UserError(f"The lab cannot confine its hosts: {reason}. Use "
                            "--isolation none to run them unconfined on loopback.")
        self.notes.append(f"The lab hosts are NOT isolated ({reason}): they share this "
                          "machine's network and files, each under its own root directory.")

    async def _confine(self, specs: list[LabHostSpec]) -> None:
        """Build the lab's private network and every host's namespaces."""
        networks = []
        for spec in specs:
            if spec.role == "hypervisor":
                networks.append(HostNetwork(
                    spec.name, spec.root, (f"{spec.address}/24",
                                           f"{hypervisor.DNS_ADDRESS}/24"),
                    loopback_addresses=(f"{self.vip}/32",), router=True,
                    local_routes=(CONTROL_PLANE_BLOCK,)))
            else:
                networks.append(HostNetwork(spec.name, spec.root, (f"{spec.address}/24",),
                                            gateway=f"{NODE_NET}.1"))
        self._confinement = Confinement(self.directory, networks)
        await self._confinement.start()

    def _down_hosts(self) -> list[str]:
        return self.scenario.down_hosts([s.name for s in self.specs() if s.role == "controller"])

    @property
    def vip(self) -> str:
        """The API VIP of a confined lab (the scenario's, else 10.50.0.1)."""
        return self.scenario.vip or VIP

    def _dns_table(self) -> tuple[str, str, Path] | None:
        """(server, TSIG key name, secret file) when the lab serves its zone."""
        from tui.lab.bind import named_missing_reason

        if not self.services or named_missing_reason() is not None:
            return None
        return (hypervisor.DNS_ADDRESS, hypervisor.TSIG_NAME,
                hypervisor.secret_path(self.directory))

    def confinement(self) -> Confinement | None:
        """The running lab's namespaces (None: not confined)."""
        return self._confinement

    def _prepare_services(self) -> tuple[dict[str, dict[str, str]], str]:
        """Write the scenario's cluster; returns each host's service environment and the
        unit directory (the inventory's ``paths.systemd_units``)."""
        inventory = load_inventory(self.inventory_path)
        if self.scenario.stage == "etcd-up" and not self.confined and self.services:
            raise UserError(f"The lab scenario {self.scenario.name!r} runs KTHW's etcd, "
                            "which needs confined hosts (each its own 127.0.0.1:2379); "
                            "this lab is not confined.")
        if self.confined:
            inventory = files.rooted(inventory, self.host_root)
        units_dir = inventory.paths.systemd_units
        if not self.services:
            return {}, units_dir
        if self.shared_address:
            self.notes.append("The lab's cluster services need one loopback address per "
                              "host, so this lab runs none (no PKI, no kube-apiserver).")
            return {}, units_dir
        cluster.prepare_cluster(self.directory, inventory, self.scenario,
                                confined=self.confined)
        if self.confined:
            hypervisor.prepare(self.host_root(HYPERVISOR), self.vip,
                               [(h.name, str(h.address)) for h in inventory.controllers],
                               inventory.api.port, pki_dir=self.pki_directory)
            hypervisor.prepare_dns(self.host_root(HYPERVISOR), self.directory, inventory)
        self.services_running = True
        etcd = self.confined and self.scenario.stage == "control-plane" and \
            etcd_release.find_binaries() is not None
        return ({host.name: cluster.service_environment(inventory, host,
                                                        confined=self.confined, etcd=etcd)
                 for host in inventory.hosts}, units_dir)

    async def _wait_for_services(self) -> None:
        if not self.services_running or not self.scenario.runs_apiserver:
            return
        endpoints = [(spec.name, spec.address, 6443) for spec in self.hosts
                     if spec.role == "controller" and spec.name not in self._down_hosts()]
        confinement = self._confinement
        opener = None
        if confinement is not None:
            def opener(name: str, address: str, port: int) -> Any:
                return confinement.handle(name).tcp_socket(address)
        for name in await cluster.wait_until_serving(endpoints, opener=opener):
            self.notes.append(f"kube-apiserver on {name} is not serving yet; see "
                              f"`journalctl -u kube-apiserver` on {name}.")

    async def stop(self) -> None:
        """Stop every host and kill every process the lab started.

        The lab is going away, so every process of every host is killed at once first
        (:func:`processes.kill_everywhere`); each host then stops as a host dies, with
        nothing left to wait for."""
        await processes.kill_everywhere(
            [host.spec.root for host in self._hosts.values()],
            [processes.MARKER, SERVICE_MARKER])
        await asyncio.gather(*(host.stop() for host in self._hosts.values()))
        self._hosts.clear()
        self.services_running = False
        if self._confinement is not None:
            await self._confinement.stop()
            self._confinement = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    async def stop_host(self, name: str) -> None:
        """Simulate host ``name`` dying: connections drop, its port refuses, processes end."""
        await self._host(name).stop()

    async def start_host(self, name: str) -> None:
        """Bring host ``name`` back (same address, port and host key)."""
        await self._host(name).start()

    def pids(self, name: str) -> list[int]:
        """Live processes started by SSH sessions on host ``name`` (and their children).

        Services are not listed: see :meth:`service_pids`.
        """
        if name in self._hosts:
            return self._hosts[name].pids()
        self._check_name(name)
        return processes.marked_pids(self.host_root(name))

    def service_pids(self, name: str) -> list[int]:
        """Live processes of host ``name``'s services (run by its supervisor)."""
        self._check_name(name)
        return processes.marked_pids(self.host_root(name), marker=SERVICE_MARKER)

    def supervisor(self, name: str) -> Supervisor:
        """The service supervisor of running host ``name`` (its ``systemctl``).

        It lives on the lab's event loop: from another thread, read its state or use
        ``LabRunner.call``; change it through ``systemctl`` over SSH like a user would.
        """
        supervisor = self._host(name).supervisor
        assert supervisor is not None
        return supervisor

    def running(self, name: str) -> bool:
        """True while host ``name`` accepts connections."""
        return name in self._hosts and self._hosts[name].running

    # -- helpers ------------------------------------------------------------------------

    def _host(self, name: str) -> LabHost:
        self._check_name(name)
        if name not in self._hosts:
            raise UserError(f"The lab is not running, so host {name} cannot be changed.")
        return self._hosts[name]

    def _check_name(self, name: str) -> None:
        if name not in self.names:
            raise UserError(f"The lab has no host called {name!r}; it has "
                            f"{', '.join(self.names)}.")

    def _prepare_directory(self) -> None:
        directory = self.directory
        if directory.exists() and not directory.is_dir():
            raise UserError(f"The lab directory {directory} exists and is not a directory.")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.stat()
        if info.st_uid != os.getuid():
            raise UserError(f"The lab directory {directory} belongs to another user "
                            f"(uid {info.st_uid}); pick one of your own with --dir.")
        os.chmod(directory, 0o700)
        lock = open(directory / "lab.lock", "a+", encoding="utf-8")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            lock.seek(0)
            owner = lock.read().strip() or "unknown"
            lock.close()
            raise UserError(f"Another lab is running in {directory} (pid {owner}); stop it "
                            "first or give this one another --dir.") from exc
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock

    def _write_client_files(self, specs: list[LabHostSpec],
                            keys: dict[str, Any]) -> None:
        hosts = [(spec, keys[spec.name]) for spec in specs]
        if self.confined:
            files.write_file(self.known_hosts_path, files.render_confined_known_hosts(hosts))
        else:
            files.write_file(self.known_hosts_path, files.render_known_hosts(hosts))
        files.write_file(self.ssh_config_path, files.render_ssh_config(
            specs, self.user, self.client_key_path, self.known_hosts_path), 0o600)
        if self.confined:
            files.write_file(self.ssh_config_path, files.render_confined_ssh_config(
                specs, self.client_key_path, self.known_hosts_path), 0o600)
            files.write_file(self.inventory_path, files.render_confined_inventory(
                specs, identity=self.client_key_path, known_hosts=self.known_hosts_path,
                ssh_config=self.ssh_config_path, vip=self.vip,
                etcd_version=_etcd_version(), dns=self._dns_table()))
            return
        files.write_file(self.inventory_path, files.render_inventory(
            specs, network=self.network, port=self.port, user=self.user,
            identity=self.client_key_path, known_hosts=self.known_hosts_path,
            ssh_config=self.ssh_config_path))


def running_pid(directory: Path) -> int | None:
    """The process running a lab in ``directory`` (None: no lab runs there)."""
    path = Path(directory) / "lab.lock"
    try:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None


def _etcd_version() -> str | None:
    """The version of the etcd binaries the lab's release cache is built from."""
    from tui.lab import etcd_release

    found = etcd_release.find_binaries()
    return etcd_release.binary_version(found[0]) if found else None


def _can_bind(address: str) -> bool:
    """True when a TCP socket can bind ``address`` (any free port)."""
    import socket

    if ipaddress.ip_address(address) == ipaddress.ip_address("127.0.0.1"):
        return True
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        try:
            sock.bind((address, 0))
        except OSError as exc:
            return exc.errno != errno.EADDRNOTAVAIL
    return True


class LabRunner:
    """A :class:`Lab` on a background thread with its own event loop.

    Use it as a context manager (or :meth:`start` / :meth:`stop`).  ``call`` runs a
    coroutine function on the lab's loop and returns its result, e.g.
    ``runner.call(runner.lab.stop_host, "controller-1")``.  This is what ``hardway
    demo`` uses: the app's own loop stays free of the lab's work.

    Args:
        directory: the lab directory.
        **kwargs: passed to :class:`Lab` (controllers, workers, network, port, ...).
    """

    def __init__(self, directory: Path, **kwargs: Any) -> None:
        self.lab = Lab(directory, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LabRunner:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> Lab:
        """Start the loop thread and the lab; returns the lab once every host listens."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=self._run_loop, args=(loop,),
                                        name="hardway-lab", daemon=True)
        self._thread.start()
        try:
            self.call(self.lab.start, timeout=timeout)
        except BaseException:
            self._shutdown_loop()
            raise
        return self.lab

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the lab (killing every process it started) and the loop thread."""
        if self._loop is None:
            return
        try:
            self.call(self.lab.stop, timeout=timeout)
        finally:
            self._shutdown_loop()

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float = 60.0) -> T:
        """Run ``await fn(*args)`` on the lab's loop and return the result (blocking)."""
        return self.submit(fn, *args).result(timeout)

    def submit(self, fn: Callable[..., Awaitable[T]], *args: Any) -> concurrent.futures.Future[T]:
        """Start ``fn(*args)`` on the lab's loop; from async code
        ``await asyncio.wrap_future(runner.submit(lab.stop_host, "controller-1"))``."""
        if self._loop is None:
            raise RuntimeError("the lab runner is not started")

        async def invoke() -> T:
            return await fn(*args)

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop)

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def _shutdown_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=30.0)


__all__ = ["Lab", "LabHostSpec", "LabRunner"]
