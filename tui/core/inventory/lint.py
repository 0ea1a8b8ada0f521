"""Lint: mistakes in an inventory that loads but describes a broken cluster.

Each check returns :class:`Finding` objects (``error`` or ``warning``) whose message is
one plain sentence naming the key path and value, what is wrong and what is expected.
Lint only looks at files' existence and permissions; it never reads a secret.
"""

from __future__ import annotations

import ipaddress
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from tui.core.inventory.model import Finding, Host, Inventory, SSHOptions

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_DOCUMENTATION = tuple(ipaddress.IPv4Network(block) for block in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
_NETWORK_KEYS = ("nodes", "control_plane_services", "pods", "services")

Check = Callable[[Inventory], Iterator[Finding]]


def _error(key: str, message: str) -> Finding:
    return Finding("error", key, message)


def _warning(key: str, message: str) -> Finding:
    return Finding("warning", key, message)


def host_keys(inv: Inventory) -> list[tuple[str, Host]]:
    """Each host with its key path in the file, e.g. ``("workers[0]", host)``."""
    keyed = [(f"controllers[{i}]", host) for i, host in enumerate(inv.controllers)]
    keyed += [(f"workers[{i}]", host) for i, host in enumerate(inv.workers)]
    return keyed


def _networks(inv: Inventory) -> list[tuple[str, ipaddress.IPv4Network]]:
    found = [(f"networks.{key}", getattr(inv.networks, key)) for key in _NETWORK_KEYS]
    return [(key, net) for key, net in found if net is not None]


def check_overlaps(inv: Inventory) -> Iterator[Finding]:
    """Address blocks must not overlap."""
    blocks = _networks(inv)
    for index, (key, net) in enumerate(blocks):
        for other_key, other in blocks[index + 1:]:
            if net.overlaps(other):
                yield _error(key, f"{key} {net} overlaps {other_key} {other}; expected "
                             "separate address blocks, otherwise routes, kube-proxy rules and "
                             "the API VIP become ambiguous.")


def check_vip(inv: Inventory) -> Iterator[Finding]:
    """The API VIP must come from the control-plane block, never the node block."""
    vip = inv.api.vip
    if vip is None:
        return
    nets = inv.networks
    cps = nets.control_plane_services
    hint = f"; expected an address from networks.control_plane_services {cps}" if cps else (
        "; expected an address outside the node block, from a block of its own declared as "
        "networks.control_plane_services")
    if vip in nets.nodes:
        yield _error("api.vip", f"api.vip {vip} is inside networks.nodes {nets.nodes}: clients "
                     "on the node network then look the VIP up with ARP instead of sending it "
                     "to the load balancer on the hypervisor, so it never round-robins across "
                     f"the controllers{hint}.")
    elif cps is not None and vip not in cps:
        yield _error("api.vip", f"api.vip {vip} is outside networks.control_plane_services "
                     f"{cps}; expected an address from that block, such as "
                     f"{cps.network_address + 1}.")
    for key, net in (("networks.pods", nets.pods), ("networks.services", nets.services)):
        if vip in net:
            yield _error("api.vip", f"api.vip {vip} is inside {key} {net}, which Kubernetes "
                         f"assigns itself{hint}.")
    if cps is not None and vip in cps and cps.num_addresses > 2 and vip in (
            cps.network_address, cps.broadcast_address):
        yield _error("api.vip", f"api.vip {vip} is the network or broadcast address of "
                     f"networks.control_plane_services {cps}; expected a usable address such "
                     f"as {cps.network_address + 1}.")
    for block in _DOCUMENTATION:
        if vip in block:
            yield _warning("api.vip", f"api.vip {vip} is a documentation address (RFC 5737 "
                           f"block {block}), i.e. a placeholder; expected the address clients "
                           "really dial, such as your load balancer's.")
    for key, host in host_keys(inv):
        if host.address == vip:
            yield _error("api.vip", f"api.vip {vip} equals {key}.address ({host.name}); "
                         "expected an address no machine owns, so the load balancer can move "
                         "traffic between controllers.")


def check_host_addresses(inv: Inventory) -> Iterator[Finding]:
    """Every host address is a usable address of the node block."""
    nodes = inv.networks.nodes
    for key, host in host_keys(inv):
        if host.address not in nodes:
            yield _error(f"{key}.address", f"{key}.address {host.address} ({host.name}) is "
                         f"outside networks.nodes {nodes}; expected an address of that block "
                         "(or widen networks.nodes).")
        elif nodes.num_addresses > 2 and host.address in (nodes.network_address,
                                                          nodes.broadcast_address):
            yield _error(f"{key}.address", f"{key}.address {host.address} ({host.name}) is the "
                         f"network or broadcast address of networks.nodes {nodes}; expected a "
                         "usable host address.")


def check_duplicates(inv: Inventory) -> Iterator[Finding]:
    """Host names and addresses are unique (the hypervisor's name too)."""
    names: dict[str, str] = {}
    addresses: dict[ipaddress.IPv4Address, str] = {}
    if inv.hypervisor is not None:
        names[inv.hypervisor.name] = "hypervisor.name"
    for key, host in host_keys(inv):
        first = names.setdefault(host.name, f"{key}.name")
        if first != f"{key}.name":
            yield _error(f"{key}.name", f'{key}.name "{host.name}" repeats {first}; expected '
                         "unique names: each is an etcd member, a node and a DNS record.")
        first = addresses.setdefault(host.address, f"{key}.address")
        if first != f"{key}.address":
            yield _error(f"{key}.address", f"{key}.address {host.address} ({host.name}) "
                         f"repeats {first}; expected a unique address per host.")


def check_names(inv: Inventory) -> Iterator[Finding]:
    """Host names are RFC 1123 labels; domain, zone and API name are DNS names."""
    for key, host in host_keys(inv):
        if not _LABEL.match(host.name):
            suggestion = re.sub(r"[^a-z0-9-]+", "-", host.name.lower()).strip("-")[:63]
            example = suggestion if _LABEL.match(suggestion) else "controller-0"
            yield _error(f"{key}.name", f'{key}.name "{host.name}" is not a DNS label (RFC '
                         "1123); expected at most 63 lowercase letters, digits and '-', "
                         f"starting and ending with a letter or digit, such as {example}: it "
                         "becomes the node name, ETCD_NAME and a DNS record.")
    names = [("cluster.domain", inv.domain), ("api.hostname", inv.api.hostname)]
    if inv.dns is not None:
        names.append(("dns.zone", inv.dns.zone))
    for key, name in names:
        if name is not None and not _DNS_NAME.match(name):
            yield _error(key, f'{key} "{name}" is not a DNS name; expected dot-separated '
                         "labels of letters, digits and '-', such as something.home.arpa.")


def _inside(name: str, zone: str) -> bool:
    name, zone = name.rstrip(".").lower(), zone.rstrip(".").lower()
    return name == zone or name.endswith("." + zone)


def check_api_name(inv: Inventory) -> Iterator[Finding]:
    """The API DNS name should live in the zone hardway manages."""
    hostname = inv.api.hostname
    if hostname is None:
        return
    zone_key, zone = ("dns.zone", inv.dns.zone) if inv.dns else ("cluster.domain", inv.domain)
    if not _inside(hostname, zone):
        consequence = ("hardway cannot publish or check its record there"
                       if inv.dns else "it will not resolve with the cluster's other names")
        yield _warning("api.hostname", f'api.hostname "{hostname}" is not inside {zone_key} '
                       f'"{zone}": {consequence}; expected a name such as kubernetes.{zone}.')


def check_local_zone(inv: Inventory) -> Iterator[Finding]:
    """Names under .local collide with multicast DNS."""
    zones = [("cluster.domain", inv.domain)]
    if inv.dns is not None and inv.dns.zone.rstrip(".").lower() != inv.domain.lower():
        zones.append(("dns.zone", inv.dns.zone))
    for key, zone in zones:
        if _inside(zone, "local"):
            home = zone.rstrip(".")[: -len("local")].rstrip(".") or "cluster"
            yield _warning(key, f'{key} "{zone}" ends in .local, which RFC 6762 reserves for '
                           "multicast DNS: macOS, Avahi and systemd-resolved clients may ask "
                           "mDNS instead of your DNS server and fail to resolve it; consider "
                           f"{home}.home.arpa (RFC 8375, the name reserved for home networks).")


def _file_problems(key: str, path: Path, what: str, *, secret: bool) -> Iterator[Finding]:
    try:
        info = path.stat()
    except FileNotFoundError:
        yield _error(key, f'{key} "{path}" does not exist; expected the {what}.')
        return
    except OSError as exc:
        yield _error(key, f'{key} "{path}" cannot be read ({exc.strerror}); expected the {what}.')
        return
    if not stat.S_ISREG(info.st_mode):
        yield _error(key, f'{key} "{path}" is not a regular file; expected the {what}.')
    elif secret and info.st_mode & 0o077:
        yield _warning(key, f'{key} "{path}" can be read by other users (mode '
                       f"{stat.S_IMODE(info.st_mode):o}); expected mode 600 (chmod 600 "
                       f"{path}) since it holds a secret.")


def _ssh_sources(inv: Inventory) -> list[tuple[str, SSHOptions]]:
    """(key prefix, SSHOptions) for the defaults, the hypervisor and each host."""
    sources: list[tuple[str, SSHOptions]] = [("ssh", inv.ssh)]
    if inv.hypervisor is not None:
        sources.append(("hypervisor.ssh", inv.hypervisor.ssh))
    sources += [(f"{key}.ssh", host.ssh) for key, host in host_keys(inv)]
    return sources


def check_files(inv: Inventory) -> Iterator[Finding]:
    """Identity, known_hosts, ssh config and TSIG secret files exist (never read)."""
    seen: set[tuple[str, Path]] = set()
    wanted = (("identity", "SSH private key", True),
              ("config", "OpenSSH client config file", False))
    for prefix, options in _ssh_sources(inv):
        for field, what, secret in wanted:
            path = getattr(options, field)
            if path is None or (field, path) in seen:
                continue
            seen.add((field, path))
            yield from _file_problems(f"{prefix}.{field}", path, what, secret=secret)
        known_hosts = options.known_hosts
        if known_hosts is not None and ("known_hosts", known_hosts) not in seen:
            seen.add(("known_hosts", known_hosts))
            if not known_hosts.exists():
                key = f"{prefix}.known_hosts"
                yield _warning(key, f'{key} "{known_hosts}" does not exist yet: every host key '
                               "is unknown, so strict checking refuses them until you accept "
                               "them (hardway --accept-new) or create the file.")
    if inv.dns is not None and inv.dns.tsig_secret_file is not None:
        name = inv.dns.tsig_name or "the key"
        yield from _file_problems(
            "dns.tsig_secret_file", inv.dns.tsig_secret_file,
            f"file holding the base64 secret of TSIG key {name} (for example the secret "
            f"line printed by `tsig-keygen -a {inv.dns.tsig_algorithm} {name}`), mode 600",
            secret=True)


def check_jumps(inv: Inventory) -> Iterator[Finding]:
    """Jump hosts name the hypervisor or a host, and never lead back to themselves."""
    hosts = {host.name: host for host in inv.hosts}
    valid = set(hosts) | ({inv.hypervisor.name} if inv.hypervisor else set())
    choices = (f"the [hypervisor] name ({inv.hypervisor.name}) or a host name"
               if inv.hypervisor else "a host name, or a [hypervisor] table with that name")
    reported: set[str] = set()
    for key, host in host_keys(inv):
        jump = host.ssh.jump
        if jump is None:
            continue
        key = "ssh.jump" if jump == inv.ssh.jump else f"{key}.ssh.jump"
        if jump not in valid:
            if key not in reported:
                reported.add(key)
                yield _error(key, f'{key} "{jump}" names no machine in the inventory; '
                             f"expected {choices}.")
            continue
        chain = [host.name]
        current: str | None = jump
        while current is not None and current in hosts and current not in chain:
            chain.append(current)
            current = hosts[current].ssh.jump
        if current is not None and current in chain:
            path = " -> ".join([*chain, current])
            yield _error(f"{key}", f"{key} of {host.name} loops back ({path}); expected a jump "
                         "host that is reached directly, such as the hypervisor.")
    if inv.hypervisor is not None and inv.hypervisor.ssh.jump is not None:
        jump = inv.hypervisor.ssh.jump
        if jump == inv.hypervisor.name or jump not in valid:
            yield _error("hypervisor.ssh.jump", f'hypervisor.ssh.jump "{jump}" is not a '
                         "machine the hypervisor can be reached through; expected a host name "
                         "or no jump.")


def check_services(inv: Inventory) -> Iterator[Finding]:
    """The service block holds the kubernetes service (.1) and cluster DNS (.10)."""
    services = inv.networks.services
    if services.num_addresses < 12:
        yield _error("networks.services", f"networks.services {services} is too small: the "
                     f"cluster DNS service takes its .10 address ({inv.cluster_dns_ip}), which "
                     "is outside the block; expected a /28 or larger, such as "
                     f"{services.supernet(new_prefix=24)}.")


def check_controller_count(inv: Inventory) -> Iterator[Finding]:
    """An even number of etcd members buys no extra fault tolerance."""
    count = len(inv.controllers)
    if count % 2 == 0:
        yield _warning("controllers", f"controllers has {count} entries: etcd needs a majority "
                       f"of {count // 2 + 1}, so {count} members survive no more failures than "
                       f"{count - 1}; expected an odd number such as 3.")


def check_pod_cidrs(inv: Inventory) -> Iterator[Finding]:
    """Per-host POD_CIDR vars are networks inside networks.pods and do not overlap."""
    pods = inv.networks.pods
    taken: list[tuple[str, ipaddress.IPv4Network]] = []
    for key, host in host_keys(inv):
        text = host.vars.get("POD_CIDR")
        if text is None:
            continue
        var_key = f"{key}.vars.POD_CIDR"
        try:
            cidr = ipaddress.IPv4Network(text, strict=True)
        except ValueError:
            example = f"{pods.network_address}/{max(pods.prefixlen, 24)}"
            yield _error(var_key, f'{var_key} "{text}" is not an IPv4 network; expected a '
                         f"block of networks.pods {pods} such as {example}.")
            continue
        if not cidr.subnet_of(pods):
            yield _error(var_key, f"{var_key} {cidr} ({host.name}) is outside networks.pods "
                         f"{pods}; expected a block inside it.")
        for other_key, other in taken:
            if cidr.overlaps(other):
                yield _error(var_key, f"{var_key} {cidr} ({host.name}) overlaps {other_key} "
                             f"{other}; expected one distinct pod block per host.")
        taken.append((var_key, cidr))


CHECKS: tuple[Check, ...] = (
    check_overlaps, check_vip, check_host_addresses, check_duplicates, check_names,
    check_api_name, check_local_zone, check_files, check_jumps, check_services,
    check_controller_count, check_pod_cidrs,
)


def lint(inv: Inventory) -> list[Finding]:
    """Every finding for ``inv``: errors first, then warnings, each in file order."""
    findings = [finding for check in CHECKS for finding in check(inv)]
    return sorted(findings, key=lambda f: f.severity != "error")
