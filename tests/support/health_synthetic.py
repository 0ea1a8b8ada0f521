"""Synthetic health data: a real Poller over scripted probes and a frozen clock.

The probes have the grid's real keys (controllers, ``vip``, ``hypervisor``, ``dns``) and
return scripted outcomes per round (:data:`SCENARIOS`): the poller, rise/fall, history,
report and engine all run for real; only the network answers are made up.  The clock
starts at 09:00:00 UTC on Dec 4 2026 and moves 2 s per round, so times and sparklines are
the same on every run.  Install with :func:`install` (``ENGINES["health"]``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from tui.core import workbench as workbench_module
from tui.core.health.engine import HealthSettings, HealthWork
from tui.core.health.model import Kind, Outcome, Probe
from tui.core.health.poller import HealthEvent, Poller, RoundFinished, RoundStarted

START = 1_796_374_800.0
"""2026-12-04 09:00:00 UTC."""
CONTROLLERS = ("controller-0", "controller-1", "controller-2")
ADDRESSES = {"controller-0": "10.10.0.10", "controller-1": "10.10.0.11",
             "controller-2": "10.10.0.12"}
CONTROLLER_KINDS = (Kind.SSH, Kind.ETCD_HEALTH, Kind.ETCD_STATUS, Kind.LIVEZ, Kind.READYZ,
                    Kind.NGINX, Kind.SCHEDULER, Kind.CONTROLLER_MANAGER, Kind.CERT_API,
                    Kind.CERT_ETCD, Kind.DNS_HOST)
OTHER_ROWS = (("vip", (Kind.VIP_ADDRESS, Kind.VIP_NAME, Kind.DNS_API)),
              ("hypervisor", (Kind.SSH, Kind.VIP_RULES)), ("dns", (Kind.DNS_HOST,)))
READYZ_CHECKS = ("ping", "log", "etcd", "poststarthook/start-kube-apiserver-admission-"
                 "initializer", "poststarthook/generic-apiserver-start-informers",
                 "poststarthook/rbac/bootstrap-roles", "shutdown")

Script = Callable[[str, Kind, int], Outcome | None]
"""(row, kind, round) -> the outcome, or None for the healthy default."""


class FrozenClock:
    """Wall clock of the synthetic rounds: START + 2 s per round."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def _latency(row: str, kind: Kind, number: int) -> float:
    """A stable, varied latency in seconds (a few ms; the VIP and certs slower)."""
    base = 3 + (sum(map(ord, row + kind.value)) % 17)
    if kind in (Kind.VIP_ADDRESS, Kind.VIP_NAME, Kind.CERT_API, Kind.CERT_ETCD):
        base += 30
    return (base + (number * (5 + base % 4) + len(row)) % 11) / 1000


def _readyz(failing: tuple[str, ...] = ()) -> str:
    lines = [f"[-]{c} failed: reason withheld" if c in failing else f"[+]{c} ok"
             for c in READYZ_CHECKS]
    verdict = "readyz check failed" if failing else "healthz check passed"
    return "\n".join([*lines, verdict])


def healthy(row: str, kind: Kind, number: int) -> Outcome:
    """Every probe answering as on a healthy KTHW cluster."""
    lat = _latency(row, kind, number)
    ms = f"{lat * 1000:.0f} ms"
    address = ADDRESSES.get(row, "10.50.0.1")
    if kind is Kind.SSH:
        return Outcome.ok(f"ssh round trip {ms}", lat, "keepalive@openssh.com answered")
    if kind is Kind.ETCD_HEALTH:
        return Outcome.ok(f"etcd healthy in {ms}", lat, '{"health":"true"}')
    if kind is Kind.ETCD_STATUS:
        role = "leader" if row == "controller-1" else "follower of controller-1"
        members = "\n".join(f"  {n}  https://{a}:2380" for n, a in ADDRESSES.items())
        return Outcome.ok(f"{role}, term 2, index {40 + number}, db 20.0 KiB", lat,
                          f"{role}, raft term 2, index {40 + number}\nmembers "
                          f"(agree with the inventory):\n{members}")
    if kind is Kind.READYZ:
        return Outcome.ok(f"readyz 200 in {ms}", lat,
                          f"GET https://{address}:6443/readyz?verbose -> 200 OK\n"
                          + _readyz())
    if kind in (Kind.LIVEZ, Kind.NGINX, Kind.SCHEDULER, Kind.CONTROLLER_MANAGER):
        return Outcome.ok(f"{kind.value} 200 in {ms}", lat, "ok")
    if kind is Kind.CERT_API:
        return Outcome.ok("the cluster CA, 14 SANs present, 365 days left", lat,
                          "issuer CN=Kubernetes\nSANs: 10.32.0.1, 10.10.0.10-12, "
                          "10.50.0.1, 127.0.0.1, kubernetes.default, ...")
    if kind is Kind.CERT_ETCD:
        return Outcome.ok("the cluster CA, 2 SANs present, 365 days left", lat,
                          f"issuer CN=Kubernetes\nSANs: {address}, 127.0.0.1")
    if kind is Kind.DNS_HOST:
        if row == "dns":
            return Outcome.ok(f"something.local serial 7 in {ms}", lat,
                              "something.local SOA @10.10.0.2:53: NOERROR, authoritative")
        return Outcome.ok(f"{row}.something.local -> {address} in {ms}", lat)
    if kind is Kind.DNS_API:
        return Outcome.ok(f"kubernetes.something.local -> 10.50.0.1 in {ms}", lat)
    if kind in (Kind.VIP_ADDRESS, Kind.VIP_NAME):
        return Outcome.ok(f"18/18 ok, median {ms}", lat, "18 requests through the VIP",
                          facts={"requests": 18, "failed": 0, "failed_fraction": 0.0})
    if kind is Kind.VIP_RULES:
        return Outcome.ok("rules list the 3 backends that are up", lat,
                          "rules send to: 10.10.0.10, 10.10.0.11, 10.10.0.12")
    raise AssertionError(kind)


def degraded(row: str, kind: Kind, number: int) -> Outcome | None:
    """controller-1's kube-apiserver stopped from round 3; its served certificate check
    fails from round 7 (on its way DOWN); controller-2's etcd certificate near expiry."""
    refused = "10.10.0.11:6443: Connection refused"
    if row == "controller-1" and number >= 3:
        if kind in (Kind.LIVEZ, Kind.READYZ):
            return Outcome.fail(f"{kind.value}: {refused}")
        if kind is Kind.NGINX:
            return Outcome.fail("nginx 502: Bad Gateway")
        if kind in (Kind.SCHEDULER, Kind.CONTROLLER_MANAGER):
            return Outcome.fail(f"{kind.value} 500: [-]leaderElection failed")
        if kind is Kind.CERT_API and number >= 7:
            return Outcome.fail(refused)
    if row == "vip" and kind in (Kind.VIP_ADDRESS, Kind.VIP_NAME) and number >= 3:
        return Outcome.warn(f"6/18 failed (33%): {refused}", 0.041, "",
                            facts={"requests": 18, "failed": 6, "failed_fraction": 0.333})
    if row == "hypervisor" and kind is Kind.VIP_RULES and number >= 5:
        return Outcome.fail("the VIP still sends to 10.10.0.11 (API server down)")
    if row == "controller-2" and kind is Kind.CERT_ETCD:
        return Outcome.warn("the cluster CA, 2 SANs present, 12 days left", 0.034)
    return None


def down(row: str, kind: Kind, number: int) -> Outcome | None:
    """etcd stopped on controller-0 and controller-1 from round 2: quorum lost, no API
    server ready, nothing answers through the VIP."""
    if row in ("controller-0", "controller-1") and number >= 2 and \
            kind in (Kind.ETCD_HEALTH, Kind.ETCD_STATUS):
        return Outcome.fail(f"{ADDRESSES[row]}:2379: Connection refused")
    if row in CONTROLLERS and kind is Kind.READYZ and number >= 2:
        return Outcome.fail("readyz 500: [-]etcd failed: reason withheld", 0.012,
                            f"GET https://{ADDRESSES[row]}:6443/readyz?verbose -> 500\n"
                            + _readyz(("etcd",)))
    if row == "vip" and kind in (Kind.VIP_ADDRESS, Kind.VIP_NAME) and number >= 2:
        return Outcome.fail("18/18 failed (100%): 500 [-]etcd failed", None, "",
                            facts={"requests": 18, "failed": 18, "failed_fraction": 1.0})
    if row == "hypervisor" and kind is Kind.VIP_RULES and number >= 4:
        return Outcome.fail("the VIP still sends to 10.10.0.10, 10.10.0.11, 10.10.0.12 "
                            "(API server down)")
    return None


SCENARIOS: dict[str, Script] = {"healthy": lambda r, k, n: None, "degraded": degraded,
                                "down": down}


async def _check(script: Script, row: str, kind: Kind, poller: list[Poller]) -> Outcome:
    number = poller[0].round
    return script(row, kind, number) or healthy(row, kind, number)


def build_poller(scenario: str, clock: FrozenClock) -> Poller:
    """A poller over every grid probe, answering as ``scenario`` says."""
    script = SCENARIOS[scenario]
    holder: list[Poller] = []
    probes = []
    rows = [(c, CONTROLLER_KINDS) for c in CONTROLLERS] + list(OTHER_ROWS)
    for row, kinds in rows:
        for kind in kinds:
            probes.append(Probe(f"{row}/{kind.value}", row, kind, f"{kind.value} of {row}",
                                2.0, partial(_check, script, row, kind, holder)))
    poller = Poller(probes, interval=2.0, rise=2, fall=3, clock=clock)
    holder.append(poller)

    def on_event(event: HealthEvent) -> None:
        if isinstance(event, RoundStarted):
            clock.now = START + 2.0 * event.round
        elif isinstance(event, RoundFinished):  # the next round at once (no real wait)
            asyncio.get_running_loop().call_soon(poller.poke)

    poller.subscribe(on_event)
    return poller


def install(monkeypatch: pytest.MonkeyPatch, scenario: str, rounds: int) -> None:
    """Make ``ENGINES["health"]`` build a synthetic engine that runs ``rounds`` rounds."""
    import sys

    module = sys.modules[__name__]

    def open_synthetic(workbench: Any) -> HealthWork:
        clock = FrozenClock()
        return HealthWork(workbench.inventory, None, workbench.pki_dir,
                          settings=HealthSettings(rounds=rounds),
                          poller=build_poller(scenario, clock), clock=clock)

    monkeypatch.setattr(module, "open_synthetic", open_synthetic, raising=False)
    monkeypatch.setitem(workbench_module.ENGINES, "health", f"{__name__}:open_synthetic")
