"""`hardway inventory check`: exit codes, text and JSON output, no tracebacks."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui.commands import inventory as inventory_command

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "config" / "something.local.toml"


def hardway(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tui.cli ARGS`` as a user would, without a terminal."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def check(*args: str) -> int:
    """Run the handler in-process through a parser holding only this command."""
    parser = argparse.ArgumentParser(prog="hardway")
    inventory_command.register(parser.add_subparsers(), parser)
    parsed = parser.parse_args(["inventory", "check", *args])
    return int(parsed.handler(parsed))


def seed_copy(tmp_path: Path, old: str = "", new: str = "", *, secret: bool = True) -> Path:
    text = SEED.read_text()
    if old:
        assert old in text
        text = text.replace(old, new, 1)
    if secret:
        (tmp_path / "secrets").mkdir()
        (tmp_path / "secrets" / "hardway-key.secret").write_text("x\n")
        (tmp_path / "secrets" / "hardway-key.secret").chmod(0o600)
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    return path


def test_bad_file_prints_one_paragraph_and_exits_2(tmp_path: Path) -> None:
    bad = seed_copy(tmp_path, 'address = "10.10.0.11"', 'address = "10.10.0.300"')
    result = hardway("inventory", "check", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(f"hardway: {bad}, line 44: ")
    assert 'controllers[1].address = "10.10.0.300" is not an IPv4 address' in result.stderr
    assert result.stderr.count("\n") == 1


def test_toml_syntax_error_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text('[cluster]\nname = "x\n')
    result = hardway("inventory", "check", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "line 2, column" in result.stderr


def test_seed_from_the_repo_exits_1_for_its_missing_secret() -> None:
    result = hardway("inventory", "check", "config/something.local.toml")
    assert result.returncode == 1, result.stderr
    assert "Findings: 1 error, 1 warning" in result.stdout
    assert "dns.tsig_secret_file" in result.stdout
    assert "\x1b[" not in result.stdout  # no colour codes without a terminal


def test_clean_inventory_exits_0_and_prints_facts(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert check(str(seed_copy(tmp_path))) == 0
    out = capsys.readouterr().out
    assert "Findings: 0 errors, 1 warning" in out
    assert ("etcd initial cluster  controller-0=https://10.10.0.10:2380,"
            "controller-1=https://10.10.0.11:2380,controller-2=https://10.10.0.12:2380") in out
    assert "first service IP      10.110.0.1" in out
    assert "cluster DNS IP        10.110.0.10" in out
    assert "DNS  kubernetes.default.svc.cluster.local" in out
    assert "IP   10.50.0.1 " in out and "the API VIP" in out
    assert "worker-2      worker" in out and "root@10.10.0.22:22" in out
    assert "nucklehead    hypervisor (freebsd, ipfw)" in out
    assert out.rstrip().endswith("OK: no errors (1 warning to consider).")


def test_lint_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(str(seed_copy(tmp_path, 'vip = "10.50.0.1"', 'vip = "10.10.0.5"'))) == 1
    out = capsys.readouterr().out
    assert "  error    api.vip 10.10.0.5 is inside networks.nodes 10.10.0.0/24" in out
    assert "NOT OK: 1 error" in out


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = seed_copy(tmp_path)
    assert check("--json", str(path)) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["file"] == str(path) and document["ok"] is True
    assert document["findings"] == [{
        "severity": "warning", "key": "cluster.domain",
        "message": document["findings"][0]["message"]}]
    facts = document["facts"]
    assert facts["etcd_initial_cluster"].startswith("controller-0=https://10.10.0.10:2380,")
    assert facts["first_service_ip"] == "10.110.0.1" and facts["cluster_dns_ip"] == "10.110.0.10"
    assert {"kind": "ip", "value": "127.0.0.1", "reason": facts["api_server_sans"][5]["reason"]} \
        == facts["api_server_sans"][5]
    assert [h["name"] for h in facts["hosts"]][-1] == "worker-2"
    assert facts["hosts"][0]["jump"] == "nucklehead"
    assert facts["dns"]["tsig_name"] == "hardway-key"
    assert "secret" not in json.dumps(facts["dns"]).replace("tsig_name", "")


def test_json_load_error_prints_json_and_exits_2(tmp_path: Path) -> None:
    bad = seed_copy(tmp_path, "port = 6443", 'port = "6443"')
    result = hardway("inventory", "check", "--json", str(bad))
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["facts"] is None
    assert 'api.port = "6443" is a string' in document["error"]
    assert "Traceback" not in result.stderr


def test_help_has_an_example() -> None:
    result = hardway("inventory", "check", "--help")
    assert result.returncode == 0
    assert "hardway inventory check config/something.local.toml" in result.stdout
    assert "exit status: 0 no errors" in result.stdout


def test_missing_file_argument_is_a_user_error() -> None:
    with pytest.raises(inventory_command.UserError, match="needs the inventory file"):
        check()
