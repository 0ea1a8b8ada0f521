"""The lab's systemd unit parser: continuations, comments, unknown keys, ExecStart words."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.core.inventory.load import load_inventory
from tui.core.systemd_unit import (
    ExecSyntaxError,
    expand_environment,
    parse_environment,
    parse_timespan,
    parse_unit,
    split_exec,
)
from tui.lab.control_plane import kube_apiserver_unit

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "config" / "something.local.toml"
PATH = "/etc/systemd/system/kube-apiserver.service"


def _exec_argv(text: str) -> tuple[str, ...]:
    unit = parse_unit(text, PATH)
    return split_exec(unit.value("Service", "ExecStart")).argv


def test_kthw_unit_parses_into_every_flag_without_warnings() -> None:
    inventory = load_inventory(SEED)
    host = inventory.controllers[0]
    unit = parse_unit(kube_apiserver_unit(inventory, host), PATH)
    assert unit.warnings == []
    argv = split_exec(unit.value("Service", "ExecStart")).argv
    assert argv[0] == "/usr/local/bin/kube-apiserver"
    assert f"--advertise-address={host.address}" in argv
    assert "--runtime-config=api/all=true" in argv  # single quotes removed like systemd
    assert argv[-3:] == ("--tls-cert-file=/var/lib/kubernetes/kubernetes.pem",
                         "--tls-private-key-file=/var/lib/kubernetes/kubernetes-key.pem",
                         "--v=2")
    assert unit.value("Service", "Restart") == "on-failure"
    assert unit.value("Install", "WantedBy") == "multi-user.target"


def test_a_dropped_backslash_ends_execstart_and_the_rest_become_unknown_keys() -> None:
    inventory = load_inventory(SEED)
    text = kube_apiserver_unit(inventory, inventory.controllers[0],
                               drop_continuation_before="--tls-cert-file")
    unit = parse_unit(text, PATH)
    argv = split_exec(unit.value("Service", "ExecStart")).argv
    assert argv[-1] == "--service-node-port-range=30000-32767"
    assert not any(a.startswith(("--tls-", "--v=")) for a in argv)
    last_line = text.splitlines().index("  --v=2") + 1
    assert [str(w) for w in unit.warnings] == [
        f"{PATH}:{last_line}: Unknown key name '--tls-cert-file' in section 'Service', "
        "ignoring."]
    assert unit.value("Service", "Restart") == "on-failure"  # later keys still count


def test_comments_inside_a_continuation_are_skipped() -> None:
    # the example of systemd.syntax(7)
    text = "[Service]\nExecStart=/bin/echo 3\\\n# this line is ignored\n; this too\n   x\n"
    assert _exec_argv(text) == ("/bin/echo", "3", "x")


def test_backslash_joins_with_a_space_and_an_escaped_backslash_does_not_continue() -> None:
    assert _exec_argv("[Service]\nExecStart=/bin/echo a\\\nb\n") == ("/bin/echo", "a", "b")
    unit = parse_unit("[Service]\nExecStart=/bin/echo a\\\\\nRestart=always\n", PATH)
    assert unit.value("Service", "Restart") == "always"
    assert split_exec(unit.value("Service", "ExecStart")).argv == ("/bin/echo", "a\\")


def test_other_systemd_warnings() -> None:
    unit = parse_unit("Foo=1\n[Bogus]\nA=b\n[X-Mine]\nB=c\n[Service]\nnoequals\nX-Ok=1\n",
                      "/u.service")
    assert [w.message for w in unit.warnings] == [
        "Assignment outside of section. Ignoring.",
        "Unknown section 'Bogus'. Ignoring.",
        "Missing '=', ignoring line.",
    ]


def test_empty_assignment_resets_a_list() -> None:
    unit = parse_unit("[Service]\nExecStart=/bin/a\nExecStart=\nExecStart=/bin/b\n", PATH)
    assert unit.values("Service", "ExecStart") == ["/bin/b"]


def test_exec_prefixes_quotes_escapes_and_specifiers() -> None:
    command = split_exec("-/bin/sh -c 'echo \"%n\" done' \\x41", unit_name="x.service",
                         hostname="controller-0")
    assert command.ignore_errors and command.prefixes == "-"
    assert command.argv == ("/bin/sh", "-c", 'echo "x.service" done', "A")
    assert command.display() == '/bin/sh -c "echo \\"x.service\\" done" A'
    with pytest.raises(ExecSyntaxError):
        split_exec("/bin/echo 'unterminated")


def test_environment_substitution_like_systemd() -> None:
    env = parse_environment(['A=1 "B=two words"', "C=x"])
    assert env == {"A": "1", "B": "two words", "C": "x"}
    argv = expand_environment(["/bin/x", "$B", "${B}", "--a=${A}", "pre$A", "$$", "$NOPE"], env)
    assert argv == ["/bin/x", "two", "words", "two words", "--a=1", "pre$A", "$"]


@pytest.mark.parametrize(("text", "seconds"), [
    ("5", 5.0), ("100ms", 0.1), ("1min 30s", 90.0), ("2h", 7200.0), ("", 9.0), ("junk", 9.0),
])
def test_timespans(text: str, seconds: float) -> None:
    assert parse_timespan(text, 9.0) == seconds


def test_a_comment_ending_in_a_backslash_does_not_continue() -> None:
    unit = parse_unit("[Service]\n# note \\\nRestart=always\n", PATH)
    assert unit.value("Service", "Restart") == "always" and unit.warnings == []


# -- one parser for the lab, the survey and the PKI repair ----------------------------------

SEED_UNIT = """[Unit]
Description=Kubernetes API Server

[Service]
ExecStart=/usr/local/bin/kube-apiserver \\
  --advertise-address=10.10.0.10 \\
  --etcd-servers="https://10.10.0.10:2379"
  --tls-cert-file=/var/lib/kubernetes/kubernetes.pem \\
  --tls-private-key-file=/var/lib/kubernetes/kubernetes-key.pem
Restart=on-failure
"""


def test_exec_argv_reads_show_output_unit_lines_and_prefixes() -> None:
    from tui.core.systemd_unit import exec_argv

    show = ('{ path=/usr/local/bin/etcd ; argv[]=/usr/local/bin/etcd --name "my node" '
            '--x=1 ; ignore_errors=no ; start_time=[n/a] }')
    assert exec_argv(show) == ["/usr/local/bin/etcd", "--name", "my node", "--x=1"]
    assert exec_argv('ExecStart=-/bin/x --a="b c" \'d\'') == ["/bin/x", "--a=b c", "d"]
    assert exec_argv("/bin/x --a=%n") == ["/bin/x", "--a=%n"]  # specifiers kept as written
    assert exec_argv('/bin/x "unbalanced') == ["/bin/x", '"unbalanced']


def test_the_lost_backslash_warns_as_systemd_and_the_repair_uses_the_same_rules() -> None:
    from tui.core.pki.survey import exec_start_argv, flag_value
    from tui.core.pki.unit_repair import repair_unit
    from tui.core.systemd_unit import split_exec
    from tui.lab import systemd_unit as lab_unit

    assert lab_unit.parse_unit is parse_unit  # the lab re-exports the core's parser
    unit = parse_unit(SEED_UNIT, "/etc/systemd/system/kube-apiserver.service")
    assert [str(w) for w in unit.warnings] == [
        "/etc/systemd/system/kube-apiserver.service:9: Unknown key name '--tls-cert-file' "
        "in section 'Service', ignoring."]
    argv = split_exec(unit.value("Service", "ExecStart")).argv
    assert flag_value(list(argv), "--tls-cert-file") is None  # dropped, as systemd does
    assert flag_value(exec_start_argv(unit.value("Service", "ExecStart")),
                      "--etcd-servers") == "https://10.10.0.10:2379"
    repaired = repair_unit(SEED_UNIT)
    assert repaired.changed and "line 8" in repaired.notes[0]
    fixed = parse_unit(repaired.text, "/etc/systemd/system/kube-apiserver.service")
    assert fixed.warnings == []
    argv = split_exec(fixed.value("Service", "ExecStart")).argv
    assert flag_value(list(argv), "--tls-private-key-file") == (
        "/var/lib/kubernetes/kubernetes-key.pem")
