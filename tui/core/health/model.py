"""The probe model: what a probe is, what one run of it returns, and how it is run.

A :class:`Probe` is a named check of one target (a controller's etcd, the VIP, ...) with a
timeout and an async ``check`` that returns an :class:`Outcome`: ``ok`` / ``warn`` /
``fail``, the latency of the exchange, one line of detail and the full verbose output a
view shows on drill-down.  :func:`run_probe` runs one under its timeout and turns every
exception into a ``fail`` outcome, so one broken probe never stops the others.

Probes are built by :mod:`tui.core.health.catalog` and run by
:class:`tui.core.health.poller.Poller`; the CLI and the screen share them.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

__all__ = ["GROUPS", "Group", "Kind", "Outcome", "Probe", "Status", "run_probe"]


class Status(enum.Enum):
    """The verdict of one probe run."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"

    @property
    def passed(self) -> bool:
        """True for ``ok`` and ``warn`` (the service answered): counts towards rise."""
        return self is not Status.FAIL


class Group(enum.Enum):
    """The column families of the grid and of the summary line."""

    SSH = "ssh"
    ETCD = "etcd"
    APISERVER = "apiserver"
    VIP = "vip"
    NGINX = "nginx"
    SCHEDULER = "scheduler"
    CONTROLLER_MANAGER = "controller-manager"
    CERTS = "certs"
    DNS = "dns"
    RULES = "vip-rules"


class Kind(enum.Enum):
    """Every kind of probe; the value is the column name (``-p``/``--skip`` take these)."""

    SSH = "ssh"
    ETCD_HEALTH = "etcd"
    ETCD_STATUS = "etcd-status"
    LIVEZ = "livez"
    READYZ = "readyz"
    NGINX = "nginx"
    SCHEDULER = "scheduler"
    CONTROLLER_MANAGER = "controller-manager"
    CERT_API = "cert-6443"
    CERT_ETCD = "cert-2379"
    DNS_HOST = "dns"
    VIP_ADDRESS = "vip"
    VIP_NAME = "vip-name"
    DNS_API = "dns-api"
    VIP_RULES = "vip-rules"

    @property
    def group(self) -> Group:
        """The family this kind belongs to."""
        return _GROUP_OF[self]


_GROUP_OF = {
    Kind.SSH: Group.SSH, Kind.ETCD_HEALTH: Group.ETCD, Kind.ETCD_STATUS: Group.ETCD,
    Kind.LIVEZ: Group.APISERVER, Kind.READYZ: Group.APISERVER, Kind.NGINX: Group.NGINX,
    Kind.SCHEDULER: Group.SCHEDULER, Kind.CONTROLLER_MANAGER: Group.CONTROLLER_MANAGER,
    Kind.CERT_API: Group.CERTS, Kind.CERT_ETCD: Group.CERTS, Kind.DNS_HOST: Group.DNS,
    Kind.VIP_ADDRESS: Group.VIP, Kind.VIP_NAME: Group.VIP, Kind.DNS_API: Group.DNS,
    Kind.VIP_RULES: Group.RULES,
}
GROUPS = tuple(Group)


@dataclass(frozen=True)
class Outcome:
    """The result of one probe run.

    Attributes:
        status: ok, warn or fail.
        detail: one line for people (``readyz 200 in 3 ms``, or why it failed).
        latency: seconds the exchange took (None when there was no answer).
        verbose: the full output for drill-down (``[+]``/``[-]`` lines, member list,
            certificate details, the error).
        at: wall-clock time (``time.time()``) the run finished; set by :func:`run_probe`.
        facts: typed extras for views and JSON (e.g. ``{"leader": True, "db_size": 20480}``).
    """

    status: Status
    detail: str
    latency: float | None = None
    verbose: str = ""
    at: float = 0.0
    facts: dict[str, object] = field(default_factory=dict)

    @classmethod
    def ok(cls, detail: str, latency: float | None = None, verbose: str = "",
           facts: dict[str, object] | None = None) -> Outcome:
        """A passing outcome."""
        return cls(Status.OK, detail, latency, verbose, facts=facts or {})

    @classmethod
    def warn(cls, detail: str, latency: float | None = None, verbose: str = "",
             facts: dict[str, object] | None = None) -> Outcome:
        """A passing outcome that needs attention (e.g. a certificate near expiry)."""
        return cls(Status.WARN, detail, latency, verbose, facts=facts or {})

    @classmethod
    def fail(cls, detail: str, latency: float | None = None, verbose: str = "",
             facts: dict[str, object] | None = None) -> Outcome:
        """A failing outcome (the verbose output defaults to the detail)."""
        return cls(Status.FAIL, detail, latency, verbose or detail, facts=facts or {})


Check = Callable[[], Awaitable[Outcome]]
"""The body of a probe: one run, returning an Outcome (it may raise: run_probe catches)."""


@dataclass(frozen=True)
class Probe:
    """One check of one target.

    Attributes:
        key: unique id, ``ROW/KIND`` (``controller-0/etcd``, ``vip/vip``).
        row: the grid row: a host name, ``vip``, ``hypervisor`` or ``dns``.
        kind: what is checked (the grid column).
        target: what is dialled, for people (``https://10.10.0.10:2379/health``).
        timeout: seconds one run may take before it counts as failed.
        check: the coroutine function doing one run.
    """

    key: str
    row: str
    kind: Kind
    target: str
    timeout: float
    check: Check = field(compare=False, repr=False)

    @property
    def name(self) -> str:
        """The column name (the kind's value)."""
        return self.kind.value


async def run_probe(probe: Probe, clock: Callable[[], float] = time.time) -> Outcome:
    """Run ``probe`` once under its timeout; never raises (except cancellation).

    A timeout or an unexpected exception becomes a ``fail`` outcome naming it.
    """
    started = time.monotonic()
    try:
        async with asyncio.timeout(probe.timeout):
            outcome = await probe.check()
    except TimeoutError:
        outcome = Outcome.fail(f"no answer from {probe.target} within {probe.timeout:g} s")
    except Exception as exc:  # a probe's bug or an unforeseen error: a failed run
        reason = str(exc) or type(exc).__name__
        outcome = Outcome.fail(f"{probe.kind.value} failed: {reason}",
                               verbose=f"{type(exc).__name__}: {reason}")
    if outcome.latency is None and outcome.status.passed:
        outcome = replace(outcome, latency=time.monotonic() - started)
    return replace(outcome, at=clock())
