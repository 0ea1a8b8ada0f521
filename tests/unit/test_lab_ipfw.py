"""The lab hypervisor's ipfw command: syntax, listing, sets, tables, errors, atomic state."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui.core.lb.ipfw import Backend, VipLayout, diff_rules, swap_commands, wanted_rules
from tui.core.lb.rules import parse_list
from tui.lab.ipfw import load_state, run

RULE = ["fwd", "10.10.0.10,6443", "tcp", "from", "any", "to", "10.50.0.10", "dst-port", "6443",
        "keep-state"]


def ipfw(state: Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(args), state, stdout=out, stderr=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def test_add_prints_the_rule_and_list_shows_it(tmp_path: Path) -> None:
    state = tmp_path / "ipfw.json"
    code, out, err = ipfw(state, "add", "1000", "set", "10", "prob", "0.333333", *RULE)
    assert (code, err) == (0, "")
    assert out == ("01000 prob 0.333333 fwd 10.10.0.10,6443 tcp from any to 10.50.0.10 "
                   "dst-port 6443 keep-state :default\n")
    code, out, _ = ipfw(state, "add", "allow", "ip", "from", "any", "to", "any")
    assert out == "01100 allow ip from any to any\n"  # no number: last + 100
    _, out, _ = ipfw(state, "list")
    assert out.splitlines()[-1] == "65535 deny ip from any to any"
    _, out, _ = ipfw(state, "-S", "list")
    assert out.splitlines()[0].startswith("01000 set 10 prob 0.333333 fwd")
    assert out.splitlines()[-1] == "65535 set 31 deny ip from any to any"


def test_disabled_sets_are_hidden_unless_dash_S(tmp_path: Path) -> None:
    state = tmp_path / "ipfw.json"
    ipfw(state, "-q", "add", "1000", "set", "11", *RULE)
    assert ipfw(state, "set", "disable", "11")[0] == 0
    _, out, _ = ipfw(state, "list")
    assert "01000" not in out
    _, out, _ = ipfw(state, "-S", "list")
    assert out.startswith("# DISABLED 01000 set 11 fwd 10.10.0.10,6443")
    assert ipfw(state, "set", "show")[1] == ("disable 11 enable " +
                                             " ".join(str(i) for i in range(31) if i != 11) + "\n")


def test_swap_move_and_delete_set(tmp_path: Path) -> None:
    state = tmp_path / "ipfw.json"
    ipfw(state, "-q", "add", "1000", "set", "10", *RULE)
    ipfw(state, "-q", "add", "1000", "set", "11", "deny", "tcp", "from", "any", "to", "10.50.0.10")
    assert ipfw(state, "set", "swap", "10", "11")[0] == 0
    sets = {r.action.value: r.set for r in parse_list(ipfw(state, "-S", "list")[1])}
    assert sets["fwd"] == 11 and sets["deny"] in (10, 31)
    assert ipfw(state, "set", "move", "11", "to", "12")[0] == 0
    assert {r.set for r in load_state(state).ordered()} == {10, 12, 31}
    assert ipfw(state, "-q", "delete", "set", "12") == (0, "", "")
    assert ipfw(state, "delete", "set", "12") == (0, "", "")  # empty set: no error
    assert [r.set for r in load_state(state).ordered()] == [10, 31]


@pytest.mark.parametrize(("args", "code", "err"), [
    (["delete", "700"], 69, "ipfw: rule 700 not found\n"),
    (["delete"], 64, "ipfw: missing rule specification\n"),
    (["set", "swap", "1"], 64, "ipfw: set swap needs 2 set numbers\n\n"),
    (["set", "swap", "1", "40"], 65, "ipfw: invalid set number 40\n\n"),
    (["set", "move", "1", "2"], 64, "ipfw: syntax: set move [rule] X to Y\n\n"),
    (["set", "enable", "3", "disable", "3"], 65,
     "ipfw: cannot enable and disable the same set\n\n"),
    (["set", "frob"], 64, "ipfw: invalid set command frob\n\n"),
    (["frob"], 64, "ipfw: bad command `frob'\n"),
    (["add", "100", "set", "40", "allow", "ip", "from", "any", "to", "any"], 65,
     "ipfw: illegal set 40\n"),
    (["add", "65535", "allow", "ip", "from", "any", "to", "any"], 69,
     "ipfw: getsockopt(IP_FW_XADD): Invalid argument\n"),
    (["table", "vip", "list"], 71, "ipfw: failed to request table info: No such process\n"),
    (["table", "vip", "delete", "10.0.0.1"], 65, "ipfw: Table vip does not exist\n"),
    (["-x", "list"], 64, "ipfw: illegal option -- x\n"),
])
def test_errors_are_ipfws(tmp_path: Path, args: list[str], code: int, err: str) -> None:
    state = tmp_path / "ipfw.json"
    before = state.exists()
    assert ipfw(state, *args) == (code, "", err)
    assert state.exists() == before  # a refused command changes nothing


def test_tables(tmp_path: Path) -> None:
    state = tmp_path / "ipfw.json"
    assert ipfw(state, "table", "ctl", "create") == (0, "", "")
    assert ipfw(state, "table", "ctl", "create")[2] == (
        "ipfw: Table creation failed: File exists\n")
    assert ipfw(state, "table", "ctl", "add", "10.10.0.10") == (0, "added: 10.10.0.10/32 0\n", "")
    code, out, err = ipfw(state, "table", "ctl", "add", "10.10.0.10")
    assert (code, out, err) == (71, "exists: 10.10.0.10/32 0\n",
                                "ipfw: Adding record failed: record already exists\n")
    assert ipfw(state, "table", "ctl", "list")[1] == (
        "--- table(ctl), set(0) ---\n10.10.0.10/32 0\n")
    assert ipfw(state, "table", "ctl", "delete", "10.10.0.10")[1] == "deleted: 10.10.0.10/32 0\n"
    assert ipfw(state, "table", "other", "add", "10.0.0.0/8")[2] == (
        "ipfw: DEPRECATED: inserting data into non-existent table other. (auto-created)\n")


def test_flush_asks_unless_forced(tmp_path: Path) -> None:
    state = tmp_path / "ipfw.json"
    ipfw(state, "-q", "add", "100", "allow", "ip", "from", "any", "to", "any")
    assert ipfw(state, "flush", stdin="n\n")[1] == "Are you sure? [yn] \n"
    assert len(load_state(state).rules) == 1
    assert ipfw(state, "-f", "flush")[1] == "Flushed all rules.\n"
    assert load_state(state).rules == []


def test_the_core_swap_commands_run_verbatim_and_diff_clean(tmp_path: Path) -> None:
    """The commands `hardway vip apply` sends work on the lab's ipfw, and the
    read-back list diffs clean against the wanted rules."""
    state = tmp_path / "ipfw.json"
    layout = VipLayout(vip="10.50.0.10")
    backends = [Backend(f"controller-{i}", f"10.10.0.1{i}") for i in range(3)]
    for round_ in (backends, backends[:2]):
        for command in swap_commands(layout, round_):
            code, _out, err = ipfw(state, *command.argv[1:])
            assert (code, err) == (0, ""), command.shell
        actual = parse_list(ipfw(state, "-S", "list")[1])
        diff = diff_rules(wanted_rules(layout, round_), actual, layout)
        assert diff.in_sync, diff.lines()
    assert len(diff.spare_rules) == 3  # the previous (3-backend) rules kept for rollback
    assert all(r.disabled for r in diff.spare_rules)


def test_runs_as_a_script(tmp_path: Path) -> None:
    state = tmp_path / "ipfw.json"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    done = subprocess.run([sys.executable, "-m", "tui.lab.ipfw", "--state", str(state),
                           "add", "100", *RULE], capture_output=True, text=True, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("00100 fwd 10.10.0.10,6443 tcp")
    inode = state.stat().st_ino
    subprocess.run([sys.executable, "-m", "tui.lab.ipfw", "--state", str(state), "set",
                    "disable", "5"], check=True, env=env)
    assert state.stat().st_ino != inode  # replaced, never rewritten in place


def test_show_is_refused_plainly(tmp_path: Path) -> None:
    code, out, err = ipfw(tmp_path / "s.json", "show")
    assert code == 64 and out == "" and "use `ipfw list`" in err


def test_shim_runs_the_command(tmp_path: Path) -> None:
    from tui.lab.ipfw import shim_script

    state = tmp_path / "ipfw.json"
    shim = tmp_path / "ipfw"
    shim.write_text(shim_script(state, pythonpath=str(Path(__file__).resolve().parents[2])))
    shim.chmod(0o755)
    done = subprocess.run([str(shim), "-q", "add", "100", *RULE], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert len(load_state(state).rules) == 1


def test_decide_follows_first_match_prob_count_tables_and_sets(tmp_path: Path) -> None:
    import random

    from tui.lab.forwarder import decide

    state_path = tmp_path / "ipfw.json"
    layout = VipLayout(vip="10.50.0.10")
    backends = [Backend(f"controller-{i}", f"10.10.0.1{i}") for i in range(3)]
    for command in swap_commands(layout, backends):
        ipfw(state_path, *command.argv[1:])
    ipfw(state_path, "-q", "add", "500", "count", "tcp", "from", "any", "to", "10.50.0.10")
    state = load_state(state_path)
    rng = random.Random(1)
    picks = [decide(state, "10.0.0.5", "10.50.0.10", 6443, rng) for _ in range(30000)]
    counts = {b.address: sum(1 for p in picks if p.backend == (b.address, 6443))
              for b in backends}
    assert all(abs(n - 10000) < 500 for n in counts.values()), counts  # 1/3 each
    assert decide(state, "10.0.0.5", "10.50.0.10", 80, rng).backend is None  # wrong port
    assert decide(state, "10.0.0.5", "10.50.0.99", 6443, rng).rule.number == 65535
    ipfw(state_path, "-q", "add", "10", "deny", "tcp", "from", "10.0.0.66", "to", "any")
    ipfw(state_path, "-q", "add", "20", "fwd", "10.10.0.12,6443", "tcp", "from", "any", "to",
         "table(vips)", "dst-port", "6443")
    ipfw(state_path, "-q", "table", "vips", "add", "10.60.0.0/24")
    state = load_state(state_path)
    assert decide(state, "10.0.0.66", "10.50.0.10", 6443, rng).rule.number == 10
    assert decide(state, "10.0.0.5", "10.60.0.7", 6443, rng).backend == ("10.10.0.12", 6443)
    ipfw(state_path, "set", "disable", "10")
    assert decide(load_state(state_path), "10.0.0.5", "10.50.0.10", 6443,
                  rng).rule.number == 65535
