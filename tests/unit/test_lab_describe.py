"""`hardway lab up`'s banner says what the scenario's cluster runs (issue 10, scenarios)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tui.commands.lab import describe
from tui.lab import scenarios
from tui.lab.server import LabHostSpec


def _lab(scenario: str) -> SimpleNamespace:
    hosts = [LabHostSpec(f"controller-{i}", "controller", f"10.10.0.1{i}", f"10.10.0.1{i}",
                         22, Path(f"/tmp/lab/hosts/controller-{i}")) for i in range(3)]
    return SimpleNamespace(directory=Path("/tmp/lab"), hosts=hosts, notes=[], confined=True,
                           services_running=True, scenario=scenarios.scenario_named(scenario),
                           inventory_path=Path("/tmp/lab/inventory.toml"),
                           ssh_config_path=Path("/tmp/lab/ssh_config"),
                           known_hosts_path=Path("/tmp/lab/known_hosts"),
                           client_key_path=Path("/tmp/lab/id_ed25519"),
                           pki_directory=Path("/tmp/lab/pki"))


@pytest.mark.parametrize(("scenario", "line"), [
    ("healthy", "Cluster (healthy): kube-apiserver on https://10.10.0.10:6443, "
                "https://10.10.0.11:6443, https://10.10.0.12:6443"),
    ("etcd-up", "Cluster (etcd-up): etcd (no control plane yet) on https://10.10.0.10:2379, "
                "https://10.10.0.11:2379, https://10.10.0.12:2379"),
    ("certs-pushed", "Cluster (certs-pushed): nothing installed yet (the files are in each "
                     "home)"),
])
def test_the_banner_names_what_the_scenario_runs(scenario: str, line: str) -> None:
    assert line in describe(_lab(scenario)).splitlines()
