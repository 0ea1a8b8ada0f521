"""The seed's broken kube-apiserver unit: find and restore the lost continuation."""

from __future__ import annotations

from tui.core.unitfile import dropped_flags, repair_continuations

BROKEN = """\
[Service]
ExecStart=/usr/local/bin/kube-apiserver \\
  --advertise-address=10.10.0.10 \\
  --service-cluster-ip-range=10.110.0.0/24
  --tls-cert-file=/var/lib/kubernetes/kubernetes.pem \\
  --tls-private-key-file=/var/lib/kubernetes/kubernetes-key.pem \\
  --v=2
Restart=on-failure
"""


def test_finds_the_flags_systemd_drops() -> None:
    assert dropped_flags(BROKEN) == ["--tls-cert-file", "--tls-private-key-file", "--v"]


def test_repair_restores_only_the_missing_backslash() -> None:
    fixed, flags = repair_continuations(BROKEN)
    assert flags == ["--tls-cert-file", "--tls-private-key-file", "--v"]
    assert fixed == BROKEN.replace("10.110.0.0/24\n", "10.110.0.0/24 \\\n")
    assert repair_continuations(fixed) == (fixed, [])


def test_a_healthy_unit_is_left_alone() -> None:
    healthy = BROKEN.replace("10.110.0.0/24\n", "10.110.0.0/24 \\\n")
    assert repair_continuations(healthy) == (healthy, [])
    plain = "[Service]\nExecStart=/bin/true\nRestart=no\n"
    assert repair_continuations(plain) == (plain, [])
