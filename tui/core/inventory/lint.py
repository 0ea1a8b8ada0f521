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
from tui.core.inventory.safefile import kind
from tui.core.inventory.sshfile import scan_ssh_config

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_DOCUMENTATION = tuple(ipaddress.IPv4Network(block) for block in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
_NETWORK_KEYS = ("nodes", "control_plane_services", "pods", "services")

Check = Callable[[Inventory], Iterator[Finding]]


MESSAGE_VALUE_LIMIT = 80
"""Characters of a value quoted in a finding; longer values are cut with "..."."""
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SHELL_META = re.compile(r"[$`;&|<>(){}\\'\"*?!#~\s]")
RISKY_VARS = {
    "LD_PRELOAD": "makes every program on the host load that library",
    "LD_LIBRARY_PATH": "changes which libraries every program on the host loads",
    "LD_AUDIT": "makes every program on the host load that library",
    "PATH": "replaces the search path of every command hardway runs there",
    "IFS": "changes how the remote shell splits every command",
    "BASH_ENV": "makes every non-interactive bash source that file",
    "ENV": "makes every interactive sh source that file",
    "PROMPT_COMMAND": "runs a command at every prompt of the console's shells",
    "SHELLOPTS": "changes the options of every bash hardway starts",
    "HOME": "changes where every remote program looks for its files",
}


def shown(value: object, limit: int = MESSAGE_VALUE_LIMIT) -> str:
    """``value`` as text for a message: control and bidi characters escaped, cut at ``limit``.

    A name from someone else's inventory may hold a right-to-left override, terminal
    escapes or megabytes of text; the message shows what it is without obeying it.
    """
    text = str(value)
    head = text[: limit * 4]
    safe = "".join(ch if ch.isprintable() and not _BIDI.match(ch)
                   else ch.encode("unicode_escape").decode("ascii") for ch in head)
    if len(safe) > limit or len(head) < len(text):
        return safe[: limit - 3] + f"... ({len(text)} characters)"
    return safe


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
            yield _error("api.vip", f"api.vip {vip} equals {key}.address ({shown(host.name)}); "
                         "expected an address no machine owns, so the load balancer can move "
                         "traffic between controllers.")


def check_host_addresses(inv: Inventory) -> Iterator[Finding]:
    """Every host address is a usable address of the node block."""
    nodes = inv.networks.nodes
    for key, host in host_keys(inv):
        if host.address not in nodes:
            yield _error(f"{key}.address", f"{key}.address {host.address} ({shown(host.name)}) "
                         f"is outside networks.nodes {nodes}; expected an address of that block "
                         "(or widen networks.nodes).")
        elif nodes.num_addresses > 2 and host.address in (nodes.network_address,
                                                          nodes.broadcast_address):
            yield _error(f"{key}.address", f"{key}.address {host.address} "
                         f"({shown(host.name)}) is the network or broadcast address of "
                         f"networks.nodes {nodes}; expected a usable host address.")


def check_duplicates(inv: Inventory) -> Iterator[Finding]:
    """Host names and addresses are unique (the hypervisor's name too)."""
    names: dict[str, str] = {}
    addresses: dict[ipaddress.IPv4Address, str] = {}
    if inv.hypervisor is not None:
        names[inv.hypervisor.name] = "hypervisor.name"
    for key, host in host_keys(inv):
        first = names.setdefault(host.name, f"{key}.name")
        if first != f"{key}.name":
            yield _error(f"{key}.name", f'{key}.name "{shown(host.name)}" repeats {first}; '
                         "(output attribution becomes ambiguous); expected "
                         "unique names: each is an etcd member, a node and a DNS record.")
        first = addresses.setdefault(host.address, f"{key}.address")
        if first != f"{key}.address":
            yield _error(f"{key}.address", f"{key}.address {host.address} ({shown(host.name)}) "
                         f"repeats {first}; expected a unique address per host.")


def _label_problem(name: str) -> str:
    """Why ``name`` is not an RFC 1123 label, in words (the reason that matters most)."""
    if name.startswith("@") or "[" in name or "," in name:
        return ("is host-set syntax (@group, name-[0-2], a,b), which -w/-x would expand "
                "instead of naming this host")
    bidi = _BIDI.search(name)
    if bidi:
        return (f"holds the invisible direction mark U+{ord(bidi.group()):04X}, which makes "
                "the name display differently from what it is")
    foreign = next((ch for ch in name if ord(ch) > 127), None)
    if foreign is not None:
        import unicodedata

        return (f"holds the non-ASCII character {foreign!r} (U+{ord(foreign):04X} "
                f"{unicodedata.name(foreign, 'unnamed')}), which can look like an ASCII "
                "letter (a homoglyph) while naming a different host")
    if _SHELL_META.search(name):
        return ("holds shell metacharacters or spaces: names are substituted into commands "
                "as {name}, so the remote shell would run part of it")
    return "is not a DNS label (RFC 1123)"


def check_names(inv: Inventory) -> Iterator[Finding]:
    """Host names are RFC 1123 labels; domain, zone and API name are DNS names."""
    named = list(host_keys(inv))
    machines: list[tuple[str, str]] = [(f"{key}.name", host.name) for key, host in named]
    if inv.hypervisor is not None:
        machines.append(("hypervisor.name", inv.hypervisor.name))
    for key, name in machines:
        if not _LABEL.match(name):
            ascii_name = name.encode("ascii", "ignore").decode()[:200]
            suggestion = re.sub(r"[^a-z0-9-]+", "-", ascii_name.lower()).strip("-")[:63]
            example = suggestion if _LABEL.match(suggestion) else "controller-0"
            yield _error(key, f'{key} "{shown(name)}" {_label_problem(name)}; expected at '
                         "most 63 lowercase letters, digits and '-', starting and ending "
                         f"with a letter or digit, such as {example}: it becomes the node "
                         "name, ETCD_NAME and a DNS record.")
    names = [("cluster.domain", inv.domain), ("api.hostname", inv.api.hostname)]
    if inv.dns is not None:
        names.append(("dns.zone", inv.dns.zone))
    for key, dns_name in names:
        if dns_name is not None and not _DNS_NAME.match(dns_name):
            yield _error(key, f'{key} "{shown(dns_name)}" is not a DNS name; expected '
                         "dot-separated labels of letters, digits and '-', such as "
                         "something.home.arpa.")


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
        yield _error(key, f'{key} "{path}" is {kind(info.st_mode)}, not a regular file; '
                     f"expected the {what}.")
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
            key = f"{prefix}.known_hosts"
            if not known_hosts.exists() and not known_hosts.is_symlink():
                yield _warning(key, f'{key} "{known_hosts}" does not exist yet: every host key '
                               "is unknown, so strict checking refuses them until you accept "
                               "them (hardway --accept-new) or create the file.")
            else:
                yield from _file_problems(key, known_hosts, "known_hosts file of SSH host "
                                          "keys", secret=False)
    if inv.dns is not None and inv.dns.tsig_secret_file is not None:
        name = inv.dns.tsig_name or "the key"
        yield from _file_problems(
            "dns.tsig_secret_file", inv.dns.tsig_secret_file,
            f"file holding the base64 secret of TSIG key {name} (for example the secret "
            f"line printed by `tsig-keygen -a {inv.dns.tsig_algorithm} {name}`), mode 600",
            secret=True)


def check_ssh_configs(inv: Inventory) -> Iterator[Finding]:
    """The OpenSSH configs named by ssh.config load, and their local commands are shown."""
    seen: set[Path] = set()
    for prefix, options in _ssh_sources(inv):
        path = options.config
        if path is None or path in seen or not Path(path).is_file():
            continue  # a missing or special file is reported by check_files
        seen.add(path)
        key = f"{prefix}.config"
        for issue in scan_ssh_config(Path(path)):
            make = _error if issue.severity == "error" else _warning
            yield make(key, f'{key} "{path}": {issue.where}: {issue.message}.')


def check_roots(inv: Inventory) -> Iterator[Finding]:
    """A host's ``root`` prefix is a plain absolute path below ``/``."""
    for key, host in host_keys(inv):
        root = host.root
        if not root:
            continue
        parts = root.split("/")
        if root.rstrip("/") == "":
            yield _warning(f"{key}.root", f'{key}.root "{shown(root)}" is the filesystem root: '
                           "every remote path is used as is, the same as no root; expected "
                           'the prefix of a jail or chroot such as "/jails/controller-0", or "".')
        elif ".." in parts or "." in parts or "//" in root:
            normal = "/" + "/".join(p for p in parts if p not in ("", "."))
            yield _warning(f"{key}.root", f'{key}.root "{shown(root)}" has "." or ".." parts, '
                           f"so files land somewhere other than it reads ({shown(normal)} "
                           "before the .. are resolved); expected a plain path such as "
                           '"/jails/controller-0".')


def check_vars(inv: Inventory) -> Iterator[Finding]:
    """Per-host vars that change how every remote program runs, or that hold commands."""
    for key, host in host_keys(inv):
        for name, value in host.vars.items():
            var_key = f"{key}.vars.{name}"
            if name in RISKY_VARS or name.startswith(("LD_", "DYLD_")):
                effect = RISKY_VARS.get(name, "changes how the dynamic linker loads programs")
                yield _warning(var_key, f'{var_key} = "{shown(value)}" is exported in every '
                               f"command and shell on {shown(host.name)}: it {effect}; expected "
                               "only the cluster's own variables such as POD_CIDR.")
            if "\n" in value or "\r" in value:
                yield _warning(var_key, f'{var_key} = "{shown(value)}" holds a line break, '
                               "which ends the line the console types to export it and runs "
                               "the rest as a command; expected a one-line value.")
            if "$(" in value or "`" in value:
                yield _warning(var_key, f'{var_key} = "{shown(value)}" holds a command '
                               "substitution ($(...) or `...`), which a shell may run when the "
                               "value is used unquoted; expected a plain value.")


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
                yield _error(key, f'{key} "{shown(jump)}" names no machine in the inventory; '
                             f"expected {choices}.")
            continue
        chain = [host.name]
        current: str | None = jump
        while current is not None and current in hosts and current not in chain:
            chain.append(current)
            current = hosts[current].ssh.jump
        if current is not None and current in chain:
            path = shown(" -> ".join([*chain, current]), 200)
            yield _error(f"{key}", f"{key} of {shown(host.name)} loops back ({path}); "
                         "expected a jump host that is reached directly, such as the hypervisor.")
    if inv.hypervisor is not None and inv.hypervisor.ssh.jump is not None:
        jump = inv.hypervisor.ssh.jump
        if jump == inv.hypervisor.name or jump not in valid:
            yield _error("hypervisor.ssh.jump", f'hypervisor.ssh.jump "{shown(jump)}" is not a '
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
            yield _error(var_key, f'{var_key} "{shown(text)}" is not an IPv4 network; expected a '
                         f"block of networks.pods {pods} such as {example}.")
            continue
        if not cidr.subnet_of(pods):
            yield _error(var_key, f"{var_key} {cidr} ({shown(host.name)}) is outside networks.pods "
                         f"{pods}; expected a block inside it.")
        for other_key, other in taken:
            if cidr.overlaps(other):
                yield _error(var_key, f"{var_key} {cidr} ({shown(host.name)}) overlaps {other_key} "
                             f"{other}; expected one distinct pod block per host.")
        taken.append((var_key, cidr))


CHECKS: tuple[Check, ...] = (
    check_overlaps, check_vip, check_host_addresses, check_duplicates, check_names,
    check_api_name, check_local_zone, check_files, check_ssh_configs, check_jumps,
    check_services, check_controller_count, check_pod_cidrs, check_roots, check_vars,
)


def lint(inv: Inventory) -> list[Finding]:
    """Every finding for ``inv``: errors first, then warnings, each in file order."""
    findings = [finding for check in CHECKS for finding in check(inv)]
    return sorted(findings, key=lambda f: f.severity != "error")
