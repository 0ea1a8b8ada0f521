"""Which probes a cluster gets: built from the inventory, the PKI and a few seams.

Rows and columns of the grid (and of ``hardway health``):

* each selected controller: ``ssh``, ``etcd`` (/health), ``etcd-status`` (leader, raft,
  DB size, member list vs inventory), ``livez``, ``readyz`` (verbose), ``nginx`` (:80
  with the in-cluster Host), ``scheduler`` (:10259), ``controller-manager`` (:10257),
  ``cert-6443`` and ``cert-2379`` (served certificate), ``dns`` (its host record);
* a selected worker: ``ssh`` and ``dns``;
* ``vip`` (when the inventory has an API VIP): ``vip`` (by address), ``vip-name`` (by
  the API DNS name, when there is a resolver), ``dns-api`` (the name resolves to the VIP);
* ``hypervisor`` (when the inventory has one): ``ssh``, and ``vip-rules`` when a
  :data:`~tui.core.health.vip_checks.VipBackends` seam is given;
* ``dns`` (when the inventory names a DNS server): ``dns``, the zone's SOA answered
  authoritatively by that server.

Everything network-bound goes through one :class:`~tui.core.health.client.HttpClient`
(kept-alive connections) and the :class:`~tui.core.fleet.dial.Dialer`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509

from tui.core.errors import UserError
from tui.core.health import cert_checks, dns_checks, etcd_checks, http_checks, vip_checks
from tui.core.health.client import HttpClient
from tui.core.health.model import Check, Kind, Outcome, Probe
from tui.core.health.probes import tls_context
from tui.core.health.ssh_check import ssh_check
from tui.core.inventory.model import Host, Inventory, San

if TYPE_CHECKING:
    from tui.core.fleet.fleet import Fleet

__all__ = ["ALL_KINDS", "Credentials", "ProbeOptions", "Seams", "build_probes"]

ALL_KINDS = frozenset(Kind)
SCHEDULER_PORT = 10259
CONTROLLER_MANAGER_PORT = 10257
NGINX_PORT = 80
SSH_TIMEOUT = 5.0


@dataclass(frozen=True)
class Credentials:
    """What the probes present and trust (PEM bytes).

    Attributes:
        ca_pem: the cluster CA (``ca.pem``); None probes without verification.
        client_pair: etcd's client certificate and key (KTHW: ``kubernetes.pem`` and
            ``kubernetes-key.pem``).
    """

    ca_pem: bytes | None = None
    client_pair: tuple[bytes, bytes] | None = None

    @classmethod
    def from_pki(cls, directory: Path) -> Credentials:
        """Read ``ca.pem`` and ``kubernetes(-key).pem`` from a KTHW/cfssl PKI directory.

        Raises:
            UserError: ``ca.pem`` is missing (the probes need it to verify anything).
        """
        ca = directory / "ca.pem"
        try:
            ca_pem = ca.read_bytes()
        except OSError as exc:
            raise UserError(f"The health probes verify TLS against the cluster CA, but "
                            f"{ca} cannot be read ({exc.strerror or exc}); give the PKI "
                            "directory with --pki.") from None
        pair = None
        cert, key = directory / "kubernetes.pem", directory / "kubernetes-key.pem"
        if cert.is_file() and key.is_file():
            pair = (cert.read_bytes(), key.read_bytes())
        return cls(ca_pem, pair)

    def __repr__(self) -> str:  # never show key material
        return (f"Credentials(ca={'yes' if self.ca_pem else 'no'}, "
                f"client={'yes' if self.client_pair else 'no'})")


@dataclass(frozen=True)
class ProbeOptions:
    """Knobs of the probe set.

    Attributes:
        kinds: the probe kinds wanted (default every kind).
        hosts: host names to probe (default the controllers).
        timeout: seconds per probe run.
        vip_repeats: requests of each path per VIP round (default 3 per controller).
        cert_refresh: seconds between handshakes that fetch a served certificate.
        warn_days: a certificate with fewer days left is a warning.
        nginx_host: the Host header of the nginx health proxy check.
    """

    kinds: frozenset[Kind] = ALL_KINDS
    hosts: tuple[str, ...] | None = None
    timeout: float = 2.0
    vip_repeats: int | None = None
    cert_refresh: float = 30.0
    warn_days: float = cert_checks.WARN_DAYS
    nginx_host: str = http_checks.NGINX_HOST


@dataclass
class Seams:
    """What the probes need from the rest of hardway (all optional).

    Attributes:
        fleet: for the SSH probes (none without it).
        resolve: DNS lookups (default: the inventory's DNS server, over TCP).
        vip_backends: reads the VIP rules' backends (no ``vip-rules`` probe without it).
        up_backends: the controller addresses whose API server is up now (the poller's
            view; given by :class:`~tui.core.health.poller.Poller` users).
    """

    fleet: Fleet | None = None
    resolve: dns_checks.Resolver | None = None
    vip_backends: vip_checks.VipBackends | None = None
    up_backends: Callable[[], Collection[str]] = field(default=lambda: ())


class _Contexts:
    """TLS contexts, built once and shared (a context per endpoint kind)."""

    def __init__(self, credentials: Credentials) -> None:
        try:
            self.api = tls_context(credentials.ca_pem)
            pair = credentials.client_pair
            self.etcd = tls_context(credentials.ca_pem, *pair) if pair else self.api
            self.unverified = tls_context(None)
            self.unverified_client = tls_context(None, *pair) if pair else self.unverified
        except ValueError as exc:
            raise UserError(f"The health probes cannot load their credentials: {exc}.") \
                from None
        self.ca_cert = (x509.load_pem_x509_certificate(credentials.ca_pem)
                        if credentials.ca_pem else None)


def build_probes(inventory: Inventory, client: HttpClient, credentials: Credentials,
                 options: ProbeOptions | None = None,
                 seams: Seams | None = None) -> list[Probe]:
    """Every probe for ``inventory``, in grid order (rows, then columns).

    Raises:
        UserError: credentials that cannot be loaded, or an unknown host name.
    """
    options = options or ProbeOptions()
    seams = seams or Seams()
    tls = _Contexts(credentials)
    resolve = seams.resolve
    if resolve is None and inventory.dns is not None:
        resolve = dns_checks.ServerResolver(inventory.dns.server, inventory.dns.port,
                                            client.dialer, timeout=options.timeout)
    hosts = _hosts(inventory, options.hosts)
    builder = _Builder(options)
    expected = {h.name: f"https://{h.address}:2380" for h in inventory.controllers}
    api_port = inventory.api.port
    ssh_timeout = max(options.timeout, SSH_TIMEOUT)  # a (re)connection is part of a run
    for host in hosts:
        row, address = host.name, str(host.address)
        if seams.fleet is not None:
            builder.add(row, Kind.SSH, f"ssh {host.dial}", _ssh(seams.fleet, host.name),
                        timeout=ssh_timeout)
        if host.role == "controller":
            etcd_port = etcd_checks.ETCD_CLIENT_PORT
            builder.add(row, Kind.ETCD_HEALTH, f"https://{address}:{etcd_port}/health",
                        partial(etcd_checks.etcd_health_check, client, address, etcd_port,
                                context=tls.etcd))
            builder.add(row, Kind.ETCD_STATUS, f"https://{address}:{etcd_port}/v3/",
                        partial(etcd_checks.etcd_status_check, client, address, etcd_port,
                                context=tls.etcd, expected=expected))
            for kind, path in ((Kind.LIVEZ, "/livez"), (Kind.READYZ, "/readyz?verbose")):
                builder.add(row, kind, f"https://{address}:{api_port}{path}",
                            partial(http_checks.apiserver_check, client, address, api_port,
                                    path, context=tls.api))
            builder.add(row, Kind.NGINX, f"http://{address}:{NGINX_PORT}/healthz",
                        partial(http_checks.endpoint_check, client, "nginx", address,
                                NGINX_PORT, "/healthz", context=None,
                                host_header=options.nginx_host))
            for kind, port, label in ((Kind.SCHEDULER, SCHEDULER_PORT, "scheduler"),
                                      (Kind.CONTROLLER_MANAGER, CONTROLLER_MANAGER_PORT,
                                       "controller-manager")):
                builder.add(row, kind, f"https://{address}:{port}/healthz",
                            partial(http_checks.endpoint_check, client, label, address, port,
                                    "/healthz", context=tls.unverified))
            api_sans = inventory.api_server_sans
            builder.add(row, Kind.CERT_API, f"certificate on {address}:{api_port}",
                        cert_checks.ServedCertCheck(
                            client.dialer, address, api_port, tls.unverified,
                            ca_cert=tls.ca_cert, required=api_sans,
                            refresh=options.cert_refresh, warn_days=options.warn_days))
            builder.add(row, Kind.CERT_ETCD, f"certificate on {address}:{etcd_port}",
                        cert_checks.ServedCertCheck(
                            client.dialer, address, etcd_port, tls.unverified_client,
                            ca_cert=tls.ca_cert, required=_etcd_sans(host),
                            refresh=options.cert_refresh, warn_days=options.warn_days))
        if resolve is not None:
            record = f"{host.name}.{inventory.domain}"
            builder.add(row, Kind.DNS_HOST, f"{record} A",
                        partial(dns_checks.record_check, resolve, record, address,
                                what=f"{host.name}'s address"))
    _vip_probes(inventory, client, tls, options, builder, resolve)
    if inventory.hypervisor is not None:
        hypervisor = inventory.hypervisor
        if seams.fleet is not None:
            builder.add("hypervisor", Kind.SSH, f"ssh {hypervisor.address}",
                        _ssh(seams.fleet, hypervisor.name), timeout=ssh_timeout)
        if seams.vip_backends is not None:
            controllers = [str(h.address) for h in inventory.controllers]
            backends = seams.vip_backends
            builder.add("hypervisor", Kind.VIP_RULES, f"VIP rules on {hypervisor.name}",
                        partial(vip_checks.rules_check, backends,
                                lambda: seams.up_backends(), controllers))
    if inventory.dns is not None:
        dns = inventory.dns
        server = (resolve if isinstance(resolve, dns_checks.ServerResolver) else
                  dns_checks.ServerResolver(dns.server, dns.port, client.dialer,
                                            timeout=options.timeout))
        builder.add("dns", Kind.DNS_HOST, f"{dns.zone} SOA @{dns.server}:{dns.port}",
                    partial(dns_checks.zone_check, server, dns.zone))
    return builder.probes


def _vip_probes(inventory: Inventory, client: HttpClient, tls: _Contexts,
                options: ProbeOptions, builder: _Builder,
                resolve: dns_checks.Resolver | None) -> None:
    vip = inventory.api.vip
    if vip is None:
        return
    port = inventory.api.port
    repeats = options.vip_repeats or 3 * max(1, len(inventory.controllers))
    each = options.timeout
    timeout = each + 1.0  # the requests run at once, each within ``each`` seconds
    builder.add("vip", Kind.VIP_ADDRESS, f"https://{vip}:{port} x{2 * repeats}",
                partial(vip_checks.vip_check, client, str(vip), port, context=tls.api,
                        repeats=repeats, request_timeout=each), timeout=timeout)
    name = inventory.api.hostname
    if name and resolve is not None:
        builder.add("vip", Kind.VIP_NAME, f"https://{name}:{port} x{2 * repeats}",
                    partial(vip_checks.vip_check, client, str(vip), port, context=tls.api,
                            repeats=repeats, name=name, resolve=resolve,
                            request_timeout=each), timeout=timeout)
        builder.add("vip", Kind.DNS_API, f"{name} A",
                    partial(dns_checks.record_check, resolve, name, str(vip),
                            what="the API VIP"))


class _Builder:
    def __init__(self, options: ProbeOptions) -> None:
        self.options = options
        self.probes: list[Probe] = []

    def add(self, row: str, kind: Kind, target: str, check: Check, *,
            timeout: float | None = None) -> None:
        if kind in self.options.kinds:
            self.probes.append(Probe(f"{row}/{kind.value}", row, kind, target,
                                     timeout or self.options.timeout, check))


def _ssh(fleet: Fleet, name: str) -> Check:
    async def check() -> Outcome:
        return await ssh_check(fleet, name)
    return check


def _etcd_sans(host: Host) -> Sequence[San]:
    return (San("ip", str(host.address), f"etcd peers and kube-apiserver dial "
                f"https://{host.address}:2379"),
            San("ip", "127.0.0.1", "etcdctl on the controller dials https://127.0.0.1:2379"))


def _hosts(inventory: Inventory, names: Sequence[str] | None) -> list[Host]:
    if names is None:
        return list(inventory.controllers)
    try:
        return [inventory.host(name) for name in names]
    except KeyError as exc:
        raise UserError(f"There is no host {exc.args[0]!r} in {inventory.path}; hosts there: "
                        f"{', '.join(h.name for h in inventory.hosts)}.") from None


def unverified_note(credentials: Credentials) -> str | None:
    """A sentence when the probes cannot verify TLS (no CA given), else None."""
    if credentials.ca_pem is None:
        return "no cluster CA given: TLS is not verified"
    return None

