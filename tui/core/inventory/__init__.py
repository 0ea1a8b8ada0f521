"""Inventory: TOML -> typed model, validation, lint and derived facts."""

from tui.core.inventory.model import (
    Api,
    Dns,
    Finding,
    Host,
    Hypervisor,
    Inventory,
    Networks,
    Paths,
    San,
    SSHOptions,
    Versions,
)

__all__ = [
    "Api",
    "Dns",
    "Finding",
    "Host",
    "Hypervisor",
    "Inventory",
    "Networks",
    "Paths",
    "SSHOptions",
    "San",
    "Versions",
]
