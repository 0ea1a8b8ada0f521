"""The etcd unit: KTHW 1.18.6 doc 07's own text for KTHW's topology, the same flags elsewhere."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from tui.core.etcd.unit import etcd_paths, render_unit, unit_state
from tui.core.inventory.load import load_inventory
from tui.core.inventory.model import Paths

ROOT = Path(__file__).resolve().parents[2]
DOC07 = ROOT / "tests" / "data" / "kthw-1.18.6-07-etcd.service.sh"


def doc07_unit(name: str, ip: str) -> str:
    """What doc 07's heredoc writes on a controller (run by a real /bin/sh, `sudo tee` -> cat)."""
    script = DOC07.read_text().replace("| sudo tee /etc/systemd/system/etcd.service", "")
    return subprocess.run(["/bin/sh", "-c", script], env={"ETCD_NAME": name, "INTERNAL_IP": ip},
                          check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("index", [0, 1, 2])
def test_kthw_topology_gives_doc07_byte_for_byte(index: int) -> None:
    inventory = load_inventory(ROOT / "config" / "kthw-gcp.toml")
    host = inventory.controllers[index]
    expected = doc07_unit(host.name, str(host.address))
    assert expected.startswith("[Unit]\n") and "\\\\" not in expected
    assert render_unit(inventory, host) == expected


def test_other_inventory_same_flags_with_its_values() -> None:
    inventory = load_inventory(ROOT / "config" / "something.local.toml")
    inventory = dataclasses.replace(inventory, paths=Paths(etcd_config="/opt/etcd/conf",
                                                           etcd_data="/srv/etcd",
                                                           bin="/opt/bin"))
    host = inventory.controllers[1]
    text = render_unit(inventory, host, token="seed-1")
    assert f"  --name {host.name} \\\n" in text
    assert "ExecStart=/opt/bin/etcd \\\n" in text
    assert "--cert-file=/opt/etcd/conf/kubernetes.pem" in text
    assert "--data-dir=/srv/etcd\n" in text
    assert f"--listen-peer-urls https://{host.address}:2380 \\" in text
    cluster = ",".join(f"{h.name}=https://{h.address}:2380" for h in inventory.controllers)
    assert f"--initial-cluster {cluster} \\" in text
    assert "--initial-cluster-token seed-1 \\" in text
    assert unit_state(text) == "new"
    rejoin = render_unit(inventory, host, state="existing")
    assert unit_state(rejoin) == "existing"
    assert etcd_paths(inventory).unit == "/etc/systemd/system/etcd.service"
