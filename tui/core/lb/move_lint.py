"""Lint a new API VIP before anything moves: its block, and that nobody uses it yet.

The new address must be an IPv4 address inside ``networks.control_plane_services``
(not its network or broadcast address), outside the node, pod and service blocks, not
the current VIP, and not used by anything hardway can see: a host, the hypervisor, the
DNS server, a record of the zone, an ipfw rule (the engine gathers those into ``used``).
Every finding is a typed value with one sentence naming the key and the value.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from tui.core.inventory.model import Inventory


class AddressProblem(StrEnum):
    """Why a new VIP is refused."""

    NOT_IPV4 = "not-ipv4"
    SAME = "same-as-current"
    NO_BLOCK = "no-control-plane-block"
    OUTSIDE_BLOCK = "outside-control-plane-block"
    BLOCK_EDGE = "network-or-broadcast"
    IN_NODES = "in-node-block"
    IN_PODS = "in-pod-block"
    IN_SERVICES = "in-service-block"
    IN_USE = "in-use"


@dataclass(frozen=True)
class AddressFinding:
    """One reason the new VIP cannot be used.

    Attributes:
        problem: what is wrong (typed).
        key: the inventory key it concerns (``networks.nodes``...), or where it is used.
        message: one sentence for people.
    """

    problem: AddressProblem
    key: str
    message: str


def parse_vip(text: str) -> ipaddress.IPv4Address | None:
    """``text`` as an IPv4 address, None when it is not one."""
    try:
        return ipaddress.IPv4Address(text.strip())
    except ValueError:
        return None


def inventory_uses(inventory: Inventory) -> dict[str, str]:
    """Addresses the inventory gives to something: address -> who (``controller-0``...)."""
    used: dict[str, str] = {}
    for host in inventory.hosts:
        used.setdefault(str(host.address), f"{host.role} {host.name}")
    if inventory.hypervisor is not None:
        used.setdefault(inventory.hypervisor.address, f"the hypervisor "
                                                      f"{inventory.hypervisor.name}")
    if inventory.dns is not None:
        used.setdefault(inventory.dns.server, "the DNS server (dns.server)")
    return used


def lint_new_vip(inventory: Inventory, text: str, *,
                 used: Mapping[str, str] | None = None) -> list[AddressFinding]:
    """Every reason ``text`` cannot become the API VIP (empty: it can).

    Args:
        inventory: the cluster as it is now (its VIP is the old one).
        text: the new VIP as the user typed it.
        used: addresses in use elsewhere -> who uses them (the zone, the hypervisor's
            rules); the inventory's own hosts are always checked.
    """
    where = f"{inventory.path}"
    vip = parse_vip(text)
    if vip is None:
        return [AddressFinding(AddressProblem.NOT_IPV4, "NEW_VIP",
                               f"{text!r} is not an IPv4 address; give the new VIP as "
                               "four dotted numbers, e.g. 10.50.0.1.")]
    findings: list[AddressFinding] = []
    nets = inventory.networks
    if inventory.api.vip == vip:
        findings.append(AddressFinding(AddressProblem.SAME, "api.vip",
                                       f"{vip} is already the API VIP in {where}; nothing "
                                       "to move."))
    block = nets.control_plane_services
    if block is None:
        findings.append(AddressFinding(
            AddressProblem.NO_BLOCK, "networks.control_plane_services",
            f"{where} declares no networks.control_plane_services, the block the VIP "
            "belongs to; add it (e.g. control_plane_services = \"10.50.0.0/24\") so the "
            "new VIP can be checked against it."))
    elif vip not in block:
        findings.append(AddressFinding(
            AddressProblem.OUTSIDE_BLOCK, "networks.control_plane_services",
            f"{vip} is outside networks.control_plane_services {block}; choose an address "
            f"of that block, such as {block.network_address + 1}."))
    elif block.num_addresses > 2 and vip in (block.network_address, block.broadcast_address):
        findings.append(AddressFinding(
            AddressProblem.BLOCK_EDGE, "networks.control_plane_services",
            f"{vip} is the network or broadcast address of networks.control_plane_services "
            f"{block}; choose a usable address such as {block.network_address + 1}."))
    for problem, key, net, why in (
            (AddressProblem.IN_NODES, "networks.nodes", nets.nodes,
             "nodes on that network would look it up with ARP instead of sending it to the "
             "load balancer (the seed's mistake)"),
            (AddressProblem.IN_PODS, "networks.pods", nets.pods,
             "Kubernetes gives those addresses to pods"),
            (AddressProblem.IN_SERVICES, "networks.services", nets.services,
             "Kubernetes gives those addresses to services")):
        if vip in net:
            findings.append(AddressFinding(problem, key, f"{vip} is inside {key} {net}: "
                                                         f"{why}."))
    seen = inventory_uses(inventory)
    seen.update({k: v for k, v in (used or {}).items() if k not in seen})
    who = seen.get(str(vip))
    if who is not None and inventory.api.vip != vip:
        findings.append(AddressFinding(AddressProblem.IN_USE, who,
                                       f"{vip} is already used by {who}; choose a free "
                                       "address."))
    return findings


def describe(findings: list[AddressFinding], text: str) -> str:
    """One paragraph refusing ``text`` with every finding."""
    lines = [f"The new VIP {text} cannot be used; nothing was changed:"]
    lines += [f"  - {f.message}" for f in findings]
    return "\n".join(lines)


__all__ = ["AddressFinding", "AddressProblem", "describe", "inventory_uses", "lint_new_vip",
           "parse_vip"]
