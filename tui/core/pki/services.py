"""Restart services on a host and wait until their health probe passes.

Shared by the certificate rollout and its restore (and later plans): :func:`remote` runs a
command and turns a failure into :class:`~tui.core.plan.StepFailed` with the command's own
words; :class:`ServiceProbes` waits for kube-apiserver ``/livez``, etcd ``/health`` (with a
client certificate) or ``systemctl is-active`` and, when a service does not come back,
says why with the last lines of its journal.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from dataclasses import dataclass

from tui.core.fleet.dial import dialer_for
from tui.core.fleet.fleet import Fleet
from tui.core.health.probes import ProbeResult, apiserver_probe, etcd_health, tls_context
from tui.core.inventory.model import Inventory
from tui.core.plan import StepFailed

__all__ = ["RESTART_ORDER", "RolloutOptions", "ServiceProbes", "login_user", "remote",
           "sudo_for", "sudo_preflight"]

RESTART_ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                 "kubelet")
"""Services in the order they are restarted on one host (etcd before its clients)."""

ETCD_CLIENT_PORT = 2379


@dataclass(frozen=True)
class RolloutOptions:
    """Knobs of a rollout or restore.

    Attributes:
        health_timeout: seconds a restarted service gets to pass its probe.
        poll_interval: seconds between probes while waiting.
        command_timeout: seconds for each remote command (restart, daemon-reload, mv).
        sudo: run remote commands and file writes with ``sudo -n`` on every host (hosts
            whose login is not root get it anyway: see :func:`sudo_for`).
    """

    health_timeout: float = 60.0
    poll_interval: float = 0.5
    command_timeout: float = 60.0
    sudo: bool = False


def login_user(fleet: Fleet, name: str) -> str:
    """The user ``name`` is logged in as (the inventory's, before connecting)."""
    connection = fleet.connection(name)
    user = connection.get_extra_info("username") if connection is not None else None
    return str(user or fleet.host(name).ssh.user or "")


def sudo_for(fleet: Fleet, name: str, options: RolloutOptions) -> bool:
    """Whether writes and service commands on ``name`` go through ``sudo -n``: asked for,
    or the login is not root (SFTP could not write /var/lib/kubernetes)."""
    user = login_user(fleet, name)
    return options.sudo or bool(user and user != "root")


async def sudo_preflight(fleet: Fleet, names: list[str], options: RolloutOptions) -> None:
    """Check that ``sudo -n`` works where it will be used, before anything changes.

    Raises:
        UserError: one paragraph naming each host where sudo wants a password or fails.
    """
    from tui.core.errors import UserError

    wanted = [n for n in names if sudo_for(fleet, n, options)]
    if not wanted:
        return
    results = await fleet.run(wanted, "true", sudo=True, timeout=options.command_timeout)
    failed = {n: r.error or r.stderr.strip() or f"exit {r.status}"
              for n, r in results.items() if not r.ok}
    if failed:
        raise UserError(
            "Nothing was changed: "
            + " ".join(f"{reason.rstrip('.')}." for reason in failed.values())
            + f" hardway writes as {login_user(fleet, wanted[0]) or 'this user'} through "
            "`sudo -n` on hosts whose login is not root (or with --sudo).")


class ServiceProbes:
    """Health probes for the services of an inventory's hosts.

    Args:
        inventory: the cluster (addresses, API port).
        fleet: for ``systemctl is-active`` and ``journalctl``.
        options: timeouts.
        ca_pem: the CA kube-apiserver's certificate must chain to (verified probes).
        etcd_pair: the client certificate and key for etcd /health (PEM).
    """

    def __init__(self, inventory: Inventory, fleet: Fleet, options: RolloutOptions, *,
                 ca_pem: bytes | None = None,
                 etcd_pair: tuple[bytes, bytes] | None = None) -> None:
        self.inventory = inventory
        self.fleet = fleet
        self.options = options
        self._ca_pem = ca_pem
        self._etcd_pair = etcd_pair
        self._contexts: dict[str, ssl.SSLContext] = {}
        self.dialer = dialer_for(inventory, fleet)  # as SSH reaches the hosts (jump host)

    def describe(self, service: str, name: str, *, verified: bool = True) -> str:
        """What :meth:`wait` probes for ``service`` on ``name``, for previews."""
        host = self.inventory.host(name)
        if service == "kube-apiserver":
            how = "verified against the new ca.pem" if verified and self._ca_pem else \
                "liveness only"
            return f"https://{host.address}:{self.inventory.api.port}/livez ({how})"
        if service == "etcd":
            return (f"https://{host.address}:{ETCD_CLIENT_PORT}/health (client certificate "
                    "kubernetes.pem)")
        return f"`systemctl is-active {service}`"

    def context(self, kind: str) -> ssl.SSLContext:
        """TLS contexts, built once: ``api``, ``api-unverified``, ``etcd``."""
        if kind not in self._contexts:
            if kind == "api" and self._ca_pem is not None:
                self._contexts[kind] = tls_context(self._ca_pem)
            elif kind == "etcd" and self._etcd_pair is not None:
                self._contexts[kind] = tls_context(self._ca_pem, *self._etcd_pair)
            else:
                self._contexts[kind] = tls_context(None)
        return self._contexts[kind]

    async def probe(self, service: str, name: str, *, verified: bool) -> ProbeResult:
        """One probe of ``service`` on ``name``."""
        address = str(self.inventory.host(name).address)
        if service == "kube-apiserver":
            context = self.context("api" if verified else "api-unverified")
            return await apiserver_probe(address, self.inventory.api.port, "/livez",
                                         context=context, timeout=5.0, dialer=self.dialer)
        if service == "etcd":
            return await etcd_health(address, ETCD_CLIENT_PORT, context=self.context("etcd"),
                                     timeout=5.0, dialer=self.dialer)
        state = await self._is_active(name, service)
        return ProbeResult(state == "active", None, None, f"{service} is {state}")

    async def wait(self, service: str, name: str, *, verified: bool) -> str:
        """Probe until healthy; returns the probe's detail.

        Raises:
            StepFailed: not healthy within ``options.health_timeout`` (with its log's end).
        """
        options = self.options
        started = time.monotonic()
        while True:
            last = await self.probe(service, name, verified=verified)
            if last.ok:
                waited = time.monotonic() - started
                return last.detail + (f", up after {waited:.1f} s" if waited >= 0.5 else "")
            if time.monotonic() - started >= options.health_timeout:
                break
            await asyncio.sleep(options.poll_interval)
        journal = await self._journal_tail(name, service)
        hint = f" Its log ends: {journal}" if journal else ""
        raise StepFailed(f"{service} on {name} did not come back within "
                         f"{options.health_timeout:g} s: {last.detail}.{hint}")

    async def _is_active(self, name: str, service: str) -> str:
        results = await self.fleet.run([name], f"systemctl is-active {service}",
                                       sudo=self.options.sudo,
                                       timeout=self.options.command_timeout)
        result = results[name]
        return result.stdout.strip() or result.error or "unknown"

    async def _journal_tail(self, name: str, service: str) -> str:
        """The service's own last log lines (systemd's messages left out when possible)."""
        command = f"journalctl -u {service} --no-pager -n 40 2>&1"
        results = await self.fleet.run([name], command, sudo=self.options.sudo, timeout=10.0)
        own: list[str] = []
        every: list[str] = []
        for line in results[name].stdout.splitlines():
            match = _JOURNAL_LINE.match(line)
            message = match.group("message") if match else line.strip()
            if not message:
                continue
            every.append(message)
            if match is None or not match.group("ident").startswith("systemd"):
                own.append(message)
        return " / ".join((own or every)[-2:])[-400:]


_JOURNAL_LINE = re.compile(
    r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ (?P<ident>[^\s\[:]+)(?:\[\d+\])?: (?P<message>.*)$")


async def remote(fleet: Fleet, name: str, command: str, *, sudo: bool, timeout: float) -> str:
    """Run ``command`` on ``name``; StepFailed with its output when it fails."""
    results = await fleet.run([name], command, sudo=sudo, timeout=timeout)
    result = results[name]
    if result.ok:
        return result.stdout
    if result.error is not None:
        raise StepFailed(f"`{command}` could not run: {result.error}")
    if result.timed_out:
        raise StepFailed(f"`{command}` did not finish within {timeout:g} s")
    output = (result.stderr.strip() or result.stdout.strip()).splitlines()
    tail = " / ".join(output[-3:])[:300]
    raise StepFailed(f"`{command}` exited {result.status}" + (f": {tail}" if tail else ""))
