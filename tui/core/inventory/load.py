"""Load an inventory TOML file into the typed model, or explain what is wrong.

Every problem becomes one :class:`InventoryError` paragraph naming the file, the
line when it can be found, the key path (``controllers[1].address``), the bad value
and what is expected.  Semantic checks that need the whole picture (overlapping
networks, VIP placement, missing key files...) are lint findings instead, see
:mod:`tui.core.inventory.lint`.  Secrets are never read here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal, cast

from tui.core.errors import UserError
from tui.core.inventory.model import (
    Api,
    Dns,
    Host,
    Hypervisor,
    Inventory,
    Networks,
    Paths,
    Role,
    SSHOptions,
    Versions,
)
from tui.core.inventory.safefile import INVENTORY_LIMIT, NotReadable, read_small
from tui.core.inventory.schema import Table, locate_line

DnsMode = Literal["rfc2136", "zonefile"]

DEFAULT_SCROLLBACK = 10000
"""Lines of scrollback per console pane when ``[console] scrollback`` is not set."""

TOP_LEVEL_KEYS = (
    "cluster", "networks", "api", "ssh", "hypervisor", "dns", "controllers", "workers",
    "paths", "versions", "console",
)
OS_KINDS = ("freebsd", "linux")
FIREWALL_KINDS = ("ipfw", "pf", "haproxy", "nftables", "iptables", "none")
DNS_MODES = ("rfc2136", "zonefile")
TSIG_ALGORITHMS = (
    "hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5",
)
_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_KEY_TUPLE = re.compile(r"\(((?:'[^']*',?\s*)+)\)")
_SECRETISH = re.compile(r"secret|passw|token|private", re.IGNORECASE)


class InventoryError(UserError):
    """The inventory file cannot be read or does not describe a valid cluster."""


def load_inventory(path: Path) -> Inventory:
    """Read, validate and normalise an inventory file.

    Args:
        path: the TOML file; relative file names inside it (identity, known_hosts,
            config, dns.tsig_secret_file) resolve against its directory.

    Returns:
        The validated :class:`Inventory`.

    Raises:
        InventoryError: the file is missing, not TOML, or a key is unknown, missing or
            has a value of the wrong kind.
    """
    path = Path(path)
    text = _read(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(_syntax_message(path, text, exc)) from None
    except RecursionError:
        raise InventoryError(_too_deep(path)) from None

    def fail(message: str, key: str) -> InventoryError:
        line = locate_line(text, key)
        where = f"{path}, line {line}" if line else str(path)
        return InventoryError(f"{where}: {message}")

    root = Table(document, "", fail, path.parent)
    try:
        return _build(path, root)
    except RecursionError:
        raise InventoryError(_too_deep(path)) from None


def _too_deep(path: Path) -> str:
    return (f"{path}: arrays or tables are nested too deeply for hardway to read (hundreds "
            "of levels); expected an inventory whose values nest at most a few levels, "
            "such as [[controllers]] tables with ssh = { ... } inside.")


def _read(path: Path) -> str:
    if not path.exists() and not path.is_symlink():
        raise InventoryError(
            f"{path}: the inventory file does not exist; expected a TOML file describing "
            "the cluster, such as config/something.local.toml (config/README.md documents "
            "every key)."
        ) from None
    if path.is_dir():
        raise InventoryError(
            f"{path}: is a directory; expected an inventory TOML file such as "
            "config/something.local.toml."
        ) from None
    try:
        raw = read_small(path, INVENTORY_LIMIT)
    except NotReadable as exc:
        raise InventoryError(not_an_inventory(path, exc.problem)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(
            f"{path}: byte {exc.start} is not UTF-8; expected a UTF-8 TOML text file."
        ) from None


def not_an_inventory(path: Path, problem: str) -> str:
    """The one message for an inventory path that cannot be read (shared with ``-i``)."""
    return (f"inventory {path} {problem}; expected a readable inventory TOML file of a few "
            "kilobytes, such as config/something.local.toml (pass it with -i FILE).")


def _syntax_message(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> str:
    reason = str(exc)
    match = _TOML_POSITION.search(reason)
    where = str(path)
    quoted = ""
    if match:
        reason = reason[: match.start()]
        line, column = int(match.group(1)), int(match.group(2))
        where = f"{path}, line {line}, column {column}"
        lines = text.splitlines()
        if 0 < line <= len(lines):
            source = lines[line - 1].strip()
            if source and not _SECRETISH.search(source) and len(source) <= 120:
                quoted = f" (the line reads: {source})"
    reason = _TOML_KEY_TUPLE.sub(
        lambda m: ".".join(re.findall(r"'([^']*)'", m.group(1))), reason)
    reason = reason[:1].lower() + reason[1:] if reason else "invalid TOML"
    return (
        f"{where}: this is not valid TOML: {reason}{quoted}; expected TOML syntax such as "
        'key = "value" under [table] headers (see config/README.md for the format).'
    )


def _build(path: Path, root: Table) -> Inventory:
    cluster = root.table("cluster", required=True, example='name = "something" and domain = '
                         '"something.local"')
    assert cluster is not None
    name = cluster.string("name", required=True, example='"something"')
    domain = cluster.string("domain", required=True, example='"something.local"')
    cluster.finish()

    networks = _networks(root)
    api = _api(root)
    defaults, _ = _ssh(root.table("ssh"), SSHOptions())
    hypervisor = _hypervisor(root, defaults)
    dns = _dns(root)
    controllers = _hosts(root, "controllers", "controller", defaults, required=True)
    workers = _hosts(root, "workers", "worker", defaults, required=False)
    paths = _paths(root)
    versions = _versions(root)
    settings = _console(root)
    root.finish()
    return Inventory(
        path=path,
        name=name or "",
        domain=domain or "",
        networks=networks,
        api=api,
        ssh=defaults,
        controllers=tuple(controllers),
        workers=tuple(workers),
        hypervisor=hypervisor,
        dns=dns,
        paths=paths,
        versions=versions,
        settings=settings,
    )


def _networks(root: Table) -> Networks:
    table = root.table("networks", required=True,
                       example='nodes = "10.10.0.0/24", pods = "10.100.0.0/16" and '
                       'services = "10.110.0.0/24"')
    assert table is not None
    nodes = table.network("nodes", required=True, example="10.10.0.0/24")
    control_plane = table.network("control_plane_services", example="10.50.0.0/24")
    pods = table.network("pods", required=True, example="10.100.0.0/16")
    services = table.network("services", required=True, example="10.110.0.0/24")
    table.finish()
    assert nodes is not None and pods is not None and services is not None
    return Networks(nodes=nodes, control_plane_services=control_plane, pods=pods,
                    services=services)


def _api(root: Table) -> Api:
    table = root.table("api")
    if table is None:
        return Api(vip=None, hostname=None)
    vip = table.ipv4("vip", example="10.50.0.1")
    hostname = table.string("hostname", example='"kubernetes.something.local"')
    port = table.port("port", default=6443) or 6443
    table.finish()
    return Api(vip=vip, hostname=hostname, port=port)


def _ssh(table: Table | None, base: SSHOptions, *,
         host_key: bool = False) -> tuple[SSHOptions, str | None]:
    """SSH options of ``table`` merged over ``base`` (``jump = ""`` clears the jump).

    Returns:
        The merged options and ``ssh.host`` (only read when ``host_key``).
    """
    if table is None:
        return base, None
    user = table.string("user", example='"root"')
    port = table.port("port", default=None)
    identity = table.path("identity", example='"~/.ssh/id_ed25519"')
    jump = table.string("jump", allow_empty=True, example='"nucklehead"')
    known_hosts = table.path("known_hosts", example='"known_hosts"')
    config = table.path("config", example='"~/.ssh/config"')
    if not host_key:
        table.refuse("host", "each host has its own name or address to dial; expected it "
                     "per host, as controllers[N].ssh.host or workers[N].ssh.host")
    host = table.hostname("host", example='"controller-0.something.local"') if host_key else None
    table.finish()
    options = SSHOptions(
        user=user if user is not None else base.user,
        identity=identity if identity is not None else base.identity,
        port=port if port is not None else base.port,
        jump=(jump or None) if jump is not None else base.jump,
        known_hosts=known_hosts if known_hosts is not None else base.known_hosts,
        config=config if config is not None else base.config,
    )
    return options, host


def _hypervisor(root: Table, defaults: SSHOptions) -> Hypervisor | None:
    table = root.table("hypervisor")
    if table is None:
        return None
    name = table.string("name", required=True, example='"nucklehead"')
    address = table.hostname("address", required=True, example='"192.168.1.2"')
    os_kind = table.choice("os", OS_KINDS, default="freebsd")
    firewall = table.choice("firewall", FIREWALL_KINDS, default="ipfw")
    own = SSHOptions(user=defaults.user, identity=defaults.identity, port=defaults.port,
                     jump=None, known_hosts=defaults.known_hosts, config=defaults.config)
    ssh, _ = _ssh(table.table("ssh"), own)
    table.finish()
    return Hypervisor(name=name or "", address=address or "", os=os_kind, firewall=firewall,
                      ssh=ssh)


def _dns(root: Table) -> Dns | None:
    table = root.table("dns")
    if table is None:
        return None
    table.refuse("tsig_secret", "the TSIG secret is never written into the inventory; put it "
                 "in a file readable only by you and set dns.tsig_secret_file to that file")
    server = table.hostname("server", required=True, example='"10.10.0.2"')
    zone = table.string("zone", required=True, example='"something.local"')
    port = table.port("port", default=53) or 53
    mode = cast(DnsMode, table.choice("mode", DNS_MODES, default="rfc2136"))
    tsig_name = table.string("tsig_name", example='"hardway-key"')
    algorithm = table.choice("tsig_algorithm", TSIG_ALGORITHMS, default="hmac-sha256")
    secret_file = table.path("tsig_secret_file", example='"secrets/hardway-key.secret"')
    zone_file = table.string("zone_file", example='"/usr/local/etc/namedb/something.local.zone"')
    if mode == "zonefile" and zone_file is None:
        raise table.error("zone_file", 'is missing while dns.mode = "zonefile"; expected the '
                          "path of the zone file on the DNS server, such as "
                          '"/usr/local/etc/namedb/something.local.zone"')
    if tsig_name is not None and secret_file is None:
        raise table.error("tsig_secret_file", f'is missing while dns.tsig_name = "{tsig_name}"; '
                          "expected the file holding that key's secret, such as "
                          '"secrets/hardway-key.secret"')
    if secret_file is not None and tsig_name is None:
        raise table.error("tsig_name", "is missing while dns.tsig_secret_file is set; expected "
                          'the TSIG key name the server knows, such as "hardway-key"')
    table.finish()
    return Dns(server=server or "", zone=zone or "", port=port, mode=mode,
               tsig_name=tsig_name, tsig_algorithm=algorithm, tsig_secret_file=secret_file,
               zone_file=zone_file)


def _hosts(root: Table, key: str, role: Role, defaults: SSHOptions, *,
           required: bool) -> list[Host]:
    hosts: list[Host] = []
    tables = root.tables(key, required=required,
                         example=f'[[{key}]] with name = "{role}-0" and address = "10.10.0.10"')
    for table in tables:
        name = table.string("name", required=True, example=f'"{role}-0"')
        address = table.ipv4("address", required=True, example="10.10.0.10")
        root_prefix = table.string("root", allow_empty=True, example='"/jails/controller-0"')
        if root_prefix and not root_prefix.startswith("/"):
            raise table.error("root", "is not an absolute path; expected a path prefix such "
                              'as "/jails/controller-0" (or "" for none)', root_prefix)
        variables = table.string_map("vars", key_pattern=_VAR_NAME,
                                     key_expected="a shell variable name such as POD_CIDR")
        ssh, ssh_host = _ssh(table.table("ssh"), defaults, host_key=True)
        table.finish()
        assert address is not None
        hosts.append(Host(name=name or "", address=address, role=role, ssh=ssh,
                          ssh_host=ssh_host or "", root=root_prefix or "",
                          vars=variables))
    return hosts


def _paths(root: Table) -> Paths:
    table = root.table("paths")
    if table is None:
        return Paths()
    defaults = Paths()
    values: dict[str, str] = {}
    for field in ("etcd_config", "etcd_data", "kubernetes_config", "kubernetes_run", "bin",
                  "systemd_units"):
        value = table.string(field, example=f'"{getattr(defaults, field)}"')
        if value is None:
            continue
        if not value.startswith("/"):
            raise table.error(field, "is not an absolute path; expected a remote path such "
                              f'as "{getattr(defaults, field)}"', value)
        values[field] = value.rstrip("/") or "/"
    table.finish()
    return Paths(**values)


def _versions(root: Table) -> Versions:
    table = root.table("versions")
    if table is None:
        return Versions()
    defaults = Versions()
    values: dict[str, str] = {}
    for field in ("etcd", "kubernetes"):
        value = table.string(field, example=f'"{getattr(defaults, field)}"')
        if value is None:
            continue
        if value.startswith("v"):
            value = value[1:]
        if not _VERSION.match(value):
            raise table.error(field, "is not a release version; expected MAJOR.MINOR.PATCH "
                              f'such as "{getattr(defaults, field)}"', value)
        values[field] = value
    table.finish()
    return Versions(**values)


def _console(root: Table) -> dict[str, object]:
    table = root.table("console")
    scrollback = DEFAULT_SCROLLBACK
    if table is not None:
        value = table.integer("scrollback", default=DEFAULT_SCROLLBACK, minimum=1,
                              maximum=10_000_000, example="10000")
        scrollback = value if value is not None else DEFAULT_SCROLLBACK
        table.finish()
    return {"console.scrollback": scrollback}
