"""Lab scenarios: the state a lab cluster starts in (healthy, or broken like the seed's).

A :class:`Scenario` is a set of hooks the lab calls while it writes its cluster; the
default hooks give a healthy KTHW cluster.  Later issues add hooks (and scenarios) here:
register a subclass with :func:`register` and ``hardway lab up --scenario NAME`` and
``hardway demo --scenario NAME`` offer it.

Usage::

    scenario = scenario_named("seed-cert-bug")     # UserError for an unknown name
    profile = scenario.certificate_profile(profile)
    unit = scenario.kube_apiserver_unit(inventory, host)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import textwrap
from typing import TYPE_CHECKING

from tui.core.errors import UserError
from tui.core.inventory.model import Host, Inventory
from tui.lab.control_plane import kube_apiserver_unit

if TYPE_CHECKING:  # keep `hardway --help` free of cryptography imports
    from tui.core.pki.profiles import Profile
    from tui.lab.lab import Lab

DEFAULT = "healthy"


class Scenario:
    """A healthy cluster; subclasses break it on purpose.

    Attributes:
        name: what ``--scenario`` takes.
        summary: one line for ``--help`` and the lab banner.
        problems: what is wrong, in plain words (empty when healthy).
    """

    name = DEFAULT
    summary = ("a healthy cluster: KTHW certificates and a kube-apiserver on every "
               "controller; on a confined lab KTHW docs 07-08 done (etcd, kube-apiserver "
               "dialling it, controller-manager, scheduler, nginx health proxy)")
    problems: tuple[str, ...] = ()
    stage = "control-plane"
    """How far KTHW has got: ``certs-pushed`` (docs 04-06: files in the homes, nothing
    installed), ``etcd-up`` (doc 07 done: a 3-member etcd, nothing of doc 08) or
    ``control-plane`` (certificates installed, kube-apiserver running; on a confined lab
    with etcd, controller-manager, scheduler and the nginx health proxy: docs 07-08)."""
    vip: str | None = None
    """The API VIP of a confined lab (None: 10.50.0.1, in its own block)."""

    def down_hosts(self, controllers: list[str]) -> list[str]:
        """Hosts powered off once the lab is up (their VMs died): none by default."""
        return []

    @property
    def runs_apiserver(self) -> bool:
        """True when the controllers run kube-apiserver at boot."""
        return self.stage == "control-plane"

    def certificate_profile(self, profile: Profile) -> Profile:
        """The profile the lab issues a certificate from (the right one by default)."""
        return profile

    def kube_apiserver_unit(self, inventory: Inventory, host: Host) -> str:
        """The kube-apiserver.service unit of controller ``host`` (KTHW's by default)."""
        return kube_apiserver_unit(inventory, host)

    def controller_units(self, inventory: Inventory, host: Host) -> dict[str, str]:
        """Extra enabled units of controller ``host`` on a confined lab (none by default)."""
        return {}

    def controller_files(self, inventory: Inventory, host: Host) -> dict[str, str]:
        """Extra files (path -> text) of controller ``host`` on a confined lab."""
        return {}

    async def after_start(self, lab: Lab) -> None:
        """Break the running cluster once every host is up (nothing by default)."""


class SeedCertBug(Scenario):
    """The seed cluster's certificate hour: a missing SAN and a self-signed served cert."""

    name = "seed-cert-bug"
    summary = ("the seed's broken state: kubernetes.pem lacks 127.0.0.1 and the unit's "
               "dropped '\\' loses --tls-cert-file, so kube-apiserver serves a self-signed "
               "certificate")
    problems = (
        "kubernetes.pem lacks the SAN 127.0.0.1 (controller-manager, scheduler and the "
        "nginx health proxy dial https://127.0.0.1:6443)",
        "kube-apiserver.service lost the '\\' before --tls-cert-file, so systemd ignores "
        "--tls-cert-file and --tls-private-key-file and the API server serves the "
        "self-signed /var/run/kubernetes/apiserver.crt it generated",
    )

    def certificate_profile(self, profile: Profile) -> Profile:
        """kubernetes.pem without 127.0.0.1."""
        if profile.name != "kubernetes":
            return profile
        return dataclasses.replace(
            profile,
            ip_addresses=tuple(ip for ip in profile.ip_addresses if ip != "127.0.0.1"),
            sans_reasons=tuple(s for s in profile.sans_reasons if s.value != "127.0.0.1"))

    def kube_apiserver_unit(self, inventory: Inventory, host: Host) -> str:
        """KTHW's unit with the backslash before --tls-cert-file missing."""
        return kube_apiserver_unit(inventory, host, drop_continuation_before="--tls-cert-file")


class CertsPushed(Scenario):
    """KTHW docs 04-06 done: every host's home holds what the ``scp`` steps left there."""

    name = "certs-pushed"
    summary = ("KTHW docs 04-06 done, nothing installed: each controller's home holds "
               "ca.pem, ca-key.pem, kubernetes(-key).pem, service-account(-key).pem, the "
               "kubeconfigs, encryption-config.yaml and the etcd release tarball, as KTHW's "
               "scp and wget steps leave them (each worker's: its certificate and "
               "kubeconfigs); the starting point for doc 07, etcd")
    stage = "certs-pushed"


class VipInNodeBlock(Scenario):
    """The seed's first VIP: inside the node block, before it moved to 10.50.0.0/24."""

    name = "vip-in-node-block"
    summary = ("the seed's first API VIP, 10.10.0.100, inside the node block 10.10.0.0/24 "
               "(confined lab): DNS, the hypervisor's VIP, the controllers' lo aliases "
               "and kubernetes.pem all use it; "
               "move it to 10.50.0.1 as the seed's author had to")
    problems = ("the API VIP 10.10.0.100 lies inside the node block 10.10.0.0/24: a node "
                "that takes that address breaks the API; it belongs in "
                "control_plane_services 10.50.0.0/24",)
    vip = "10.10.0.100"

    def controller_units(self, inventory: Inventory, host: Host) -> dict[str, str]:
        """The VIP on every controller's lo at boot, as hardway's alias unit puts it."""
        from tui.core.lb.aliases import UNIT_NAME, render_unit

        return {UNIT_NAME: render_unit(self.vip)}

    def controller_files(self, inventory: Inventory, host: Host) -> dict[str, str]:
        """The alias's sysctl file (never answer ARP for the VIP)."""
        from tui.core.lb.aliases import SYSCTL_PATH, render_sysctl

        return {SYSCTL_PATH: render_sysctl()}


class ControllerDown(Scenario):
    """A healthy cluster whose controller-2 has just died (its VM powered off)."""

    name = "controller-down"
    summary = ("a healthy cluster whose last controller is powered off: its SSH, services "
               "and address are gone, so a third of the VIP's round robin fails")
    problems = ("the last controller is down: connections the VIP sends there fail",)

    def down_hosts(self, controllers: list[str]) -> list[str]:
        """The last controller (none when it is the only one)."""
        return controllers[-1:] if len(controllers) > 1 else []


class EtcdUp(Scenario):
    """KTHW doc 07 done: etcd runs on every controller; doc 08 not started."""

    name = "etcd-up"
    summary = ("KTHW docs 04-07 done (confined lab): a healthy etcd cluster on every "
               "controller, installed as doc 07 does; the homes still hold the scp'd "
               "files; no control plane yet (doc 08)")
    stage = "etcd-up"


class ControlPlaneUp(Scenario):
    """``healthy`` by the name of the chapter it ends (KTHW docs 07-08 done)."""

    name = "control-plane-up"
    summary = ("the healthy cluster, named after the chapter it ends: KTHW docs 07-08 done "
               "(etcd, kube-apiserver, controller-manager, scheduler, nginx health proxy)")


class EtcdStaleMember(Scenario):
    """KTHW doc 07 done, then the last controller lost its etcd data (a rebuilt VM)."""

    name = "etcd-stale-member"
    summary = ("KTHW doc 07 done (confined lab), then the last controller's etcd lost its "
               "data directory, as a rebuilt VM does, and was started again by its unit "
               "(--initial-cluster-state new): the cluster still lists its old member, so "
               "it fails with 'member ... has already been bootstrapped'; `hardway etcd "
               "status` diagnoses it and `hardway etcd replace` mends it")
    problems = ("the last controller's etcd member is stale: its data directory is gone "
                "and it cannot rejoin with --initial-cluster-state new",)
    stage = "etcd-up"
    START_WAIT = 10.0
    """Seconds to let the broken member's start fail (it never becomes ready)."""

    def stale_host(self, controllers: list[str]) -> str | None:
        """The controller whose member goes stale (None with a single controller)."""
        return controllers[-1] if len(controllers) > 1 else None

    async def after_start(self, lab: Lab) -> None:
        """Stop its etcd, remove its data directory's ``member``, start it again."""
        name = self.stale_host([s.name for s in lab.specs() if s.role == "controller"])
        if name is None:
            return
        supervisor = lab.supervisor(name)
        await supervisor.stop("etcd")
        shutil.rmtree(lab.host_root(name) / "var" / "lib" / "etcd" / "member",
                      ignore_errors=True)
        with contextlib.suppress(Exception):  # it fails, as the real one does
            await asyncio.wait_for(supervisor.start("etcd"), self.START_WAIT)


_REGISTRY: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    """Make ``scenario`` available by name (later registrations replace earlier ones)."""
    _REGISTRY[scenario.name] = scenario
    return scenario


def names() -> list[str]:
    """Every registered scenario name, the default first."""
    return [DEFAULT, *sorted(n for n in _REGISTRY if n != DEFAULT)]


def scenario_named(name: str) -> Scenario:
    """The scenario called ``name``.

    Raises:
        UserError: no such scenario (the message lists the known ones).
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"The lab has no scenario called {name!r} (--scenario); choose one "
                        f"of: {', '.join(names())}.") from None


def describe() -> str:
    """``NAME  summary`` lines for ``--help``."""
    width = max(len(n) for n in names())
    return "\n".join(textwrap.fill(_REGISTRY[n].summary, 88, initial_indent=f"  {n:<{width}}  ",
                                   subsequent_indent=" " * (width + 4), break_on_hyphens=False)
                     for n in names())


register(Scenario())
register(SeedCertBug())
register(CertsPushed())
register(EtcdUp())
register(VipInNodeBlock())
register(ControllerDown())
register(EtcdStaleMember())
register(ControlPlaneUp())
