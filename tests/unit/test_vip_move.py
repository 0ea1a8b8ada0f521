"""The pure parts of `hardway vip move`: rule-set transitions (run on the lab's ipfw model),
the inventory edit, the new-VIP lint, the journal, the one-round-trip ipfw script, the
rollback preview that writes nothing, and the result text."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest

from tui.core.errors import UserError
from tui.core.inventory.load import load_inventory
from tui.core.lb.ipfw import Backend, IpfwCommand, VipLayout, wanted_rules
from tui.core.lb.move import MoveAction, MoveResult, StepOutcome, StepResult
from tui.core.lb.move_context import (
    FAILED_MARK,
    MoveContext,
    MoveStepKind,
    batch_script,
    failed_line,
)
from tui.core.lb.move_inventory import edit_vip, write_text_atomic
from tui.core.lb.move_journal import EntryState, MoveJournal, MoveStatus
from tui.core.lb.move_lint import AddressProblem, describe, lint_new_vip
from tui.core.lb.move_rules import (
    SetState,
    build_commands,
    check_layout,
    expect_after_build,
    expect_after_swap,
    final_rules,
    read_sets,
    restore_commands,
    swap_command,
    transition_rules,
)
from tui.core.lb.move_view import result_lines
from tui.core.lb.rules import parse_line, parse_list
from tui.lab import ipfw as lab_ipfw

OLD, NEW = "10.10.0.100", "10.50.0.1"
BACKENDS = [Backend("controller-0", "10.10.0.10"), Backend("controller-1", "10.10.0.11"),
            Backend("controller-2", "10.10.0.12")]
OLD_LAYOUT = VipLayout(vip=OLD)
NEW_LAYOUT = VipLayout(vip=NEW)


# -- rule sets, carried out by the lab's ipfw model ----------------------------------------


class Hypervisor:
    """The lab's ipfw on a state file: runs commands, reads the VIP's sets back."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, commands: list[IpfwCommand]) -> None:
        for command in commands:
            err = io.StringIO()
            code = lab_ipfw.run(list(command.argv[1:]), self.path, stdout=io.StringIO(),
                                stderr=err, stdin=io.StringIO())
            assert code == 0, f"{command.shell}: {err.getvalue()}"

    def sets(self) -> SetState:
        out = io.StringIO()
        assert lab_ipfw.run(["-S", "list"], self.path, stdout=out, stderr=io.StringIO(),
                            stdin=io.StringIO()) == 0
        return read_sets(parse_list(out.getvalue()), OLD_LAYOUT)


@pytest.fixture
def hv(tmp_path: Path) -> Hypervisor:
    """A hypervisor with the seed's round robin on the old VIP in set 10."""
    hypervisor = Hypervisor(tmp_path / "ipfw.json")
    hypervisor.run([*build_commands(OLD_LAYOUT, wanted_rules(OLD_LAYOUT, BACKENDS)),
                    swap_command(OLD_LAYOUT)])
    hypervisor.run([IpfwCommand(("ipfw", "-q", "delete", "set", "11"), "empty")])
    return hypervisor


def test_the_three_rule_states_of_a_move(hv: Hypervisor) -> None:
    start = hv.sets()
    assert [r.dst for r in start.active] == [OLD] * 3 and start.spare == ()

    rules = transition_rules(start, OLD_LAYOUT, NEW_LAYOUT, BACKENDS)
    assert [(r.number, r.dst, r.set) for r in rules] == [
        (1000, OLD, 11), (1010, OLD, 11), (1020, OLD, 11),
        (1100, NEW, 11), (1110, NEW, 11), (1120, NEW, 11)]
    hv.run(build_commands(OLD_LAYOUT, rules))
    built = hv.sets()
    assert built.same_as(expect_after_build(start, rules))
    assert built.active == start.active and not built.spare_enabled  # traffic unchanged

    hv.run([swap_command(OLD_LAYOUT)])
    switched = hv.sets()
    assert switched.same_as(expect_after_swap(built, OLD_LAYOUT))
    assert {r.dst for r in switched.active} == {OLD, NEW}

    final = final_rules(NEW_LAYOUT, BACKENDS)
    hv.run([*build_commands(OLD_LAYOUT, final), swap_command(OLD_LAYOUT)])
    done = hv.sets()
    assert [r.line() for r in done.active] == [r.line() for r in wanted_rules(NEW_LAYOUT,
                                                                              BACKENDS)]
    assert {r.dst for r in done.spare} == {OLD, NEW}  # the rules before, for a rollback

    for earlier in (switched, built, start):
        hv.run(restore_commands(OLD_LAYOUT, earlier))
        assert hv.sets().same_as(earlier)


def test_restore_puts_back_the_enabling_of_both_sets(hv: Hypervisor) -> None:
    odd = SetState(hv.sets().active, (parse_line(
        "01500 set 11 fwd 10.10.0.10,6443 tcp from any to 10.10.0.100 dst-port 6443"),),
        active_enabled=False, spare_enabled=True)
    hv.run(restore_commands(OLD_LAYOUT, odd))
    assert hv.sets().same_as(odd)


def test_set_state_survives_the_journal() -> None:
    rules = wanted_rules(OLD_LAYOUT, BACKENDS)
    state = SetState(tuple(rules), tuple(rules[:1]), True, False)
    again = SetState.from_json(state.to_json())
    assert again.same_as(state)
    assert not again.same_as(SetState(tuple(rules), (), True, False))
    with pytest.raises(ValueError):
        SetState.from_json({"active": "not a list"})


def test_rules_hardway_cannot_write_again_are_refused() -> None:
    count = parse_line("01005 set 10 skipto 2000 ip from any to any")
    state = SetState((*wanted_rules(OLD_LAYOUT, BACKENDS), count), ())
    with pytest.raises(UserError, match=r"cannot write again.*01005 set 10 skipto 2000.*--set"):
        check_layout(state, OLD_LAYOUT)


# -- the one-round-trip script ---------------------------------------------------------


def test_the_batch_script_stops_at_the_first_failure_and_names_it(tmp_path: Path) -> None:
    log = tmp_path / "log"
    lines = [f"echo one >> {log}", "sh -c 'echo ipfw: refused >&2; exit 71'",
             f"echo three >> {log}"]
    done = subprocess.run(["/bin/sh", "-c", batch_script(lines)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 71
    assert log.read_text() == "one\n"
    assert failed_line(done.stderr, done.stdout, len(lines)) == (1, "ipfw: refused")
    ok = subprocess.run(["/bin/sh", "-c", batch_script(lines[:1])], check=False)
    assert ok.returncode == 0
    assert failed_line("ssh: broken pipe", "", 3) == (None, "ssh: broken pipe")
    assert failed_line(f"{FAILED_MARK} 9", "", 3) == (None, f"{FAILED_MARK} 9")  # not ours


# -- the inventory edit ----------------------------------------------------------------

INVENTORY = """\
# the seed's cluster
[networks]
nodes = "10.10.0.0/24"   # vip = "not this"

[hypervisor]
vip = "10.10.0.100"

[api]
hostname = "kubernetes.lab.home.arpa"
vip = '10.10.0.100'    # moved by hand once\r
port = 6443

[[controllers]]
vip = "10.10.0.100"
"""


def test_only_the_api_vip_changes(tmp_path: Path) -> None:
    path = tmp_path / "hardway.toml"
    edit = edit_vip(path, INVENTORY, OLD, NEW)
    assert edit.line == 10
    assert edit.new_text == INVENTORY.replace(
        "vip = '10.10.0.100'    # moved", "vip = '10.50.0.1'    # moved")
    assert "-vip = '10.10.0.100'" in edit.diff and "+vip = '10.50.0.1'" in edit.diff


@pytest.mark.parametrize(("text", "message"), [
    ("[api]\nport = 6443\n", r"no `vip = \"...\"` line in the \[api\] table"),
    ("[api]\nvip = \"10.10.0.7\"\n", r"line 2: \[api\] vip is '10.10.0.7', not '10.10.0.100'"),
])
def test_an_inventory_the_move_cannot_edit_is_refused(tmp_path: Path, text: str,
                                                       message: str) -> None:
    with pytest.raises(UserError, match=message):
        edit_vip(tmp_path / "hardway.toml", text, OLD, NEW)


def test_the_atomic_write_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "hardway.toml"
    path.write_text("old")
    path.chmod(0o640)
    write_text_atomic(path, "new")
    assert path.read_text() == "new" and (os.stat(path).st_mode & 0o777) == 0o640


# -- the new VIP's lint ----------------------------------------------------------------

SEED = (Path(__file__).resolve().parents[2] / "config" / "something.local.toml").read_text(
).replace('vip = "10.50.0.1"', f'vip = "{OLD}"')


@pytest.fixture
def seed(tmp_path: Path) -> Any:
    path = tmp_path / "hardway.toml"
    path.write_text(SEED)
    (tmp_path / "secrets").mkdir()
    secret = tmp_path / "secrets" / "hardway-key.secret"
    secret.write_text("not-a-real-secret\n")
    secret.chmod(0o600)
    return load_inventory(path)


@pytest.mark.parametrize(("vip", "problems"), [
    ("10.50.0.1", set()),
    ("ten", {AddressProblem.NOT_IPV4}),
    ("10.10.0.100", {AddressProblem.SAME, AddressProblem.OUTSIDE_BLOCK,
                     AddressProblem.IN_NODES}),
    ("10.10.0.10", {AddressProblem.OUTSIDE_BLOCK, AddressProblem.IN_NODES,
                    AddressProblem.IN_USE}),
    ("10.50.0.0", {AddressProblem.BLOCK_EDGE}),
    ("10.50.0.255", {AddressProblem.BLOCK_EDGE}),
    ("10.110.0.1", {AddressProblem.OUTSIDE_BLOCK, AddressProblem.IN_SERVICES}),
    ("10.10.0.2", {AddressProblem.OUTSIDE_BLOCK, AddressProblem.IN_NODES,
                   AddressProblem.IN_USE}),
])
def test_new_vip_lint(seed: Any, vip: str, problems: set[AddressProblem]) -> None:
    assert {f.problem for f in lint_new_vip(seed, vip)} == problems


def test_addresses_used_elsewhere_are_refused_with_who_uses_them(seed: Any) -> None:
    findings = lint_new_vip(seed, "10.50.0.7", used={"10.50.0.7": "the DNS record x."})
    assert [f.problem for f in findings] == [AddressProblem.IN_USE]
    text = describe(findings, "10.50.0.7")
    assert text.startswith("The new VIP 10.50.0.7 cannot be used; nothing was changed:")
    assert "already used by the DNS record x." in text


# -- the journal -----------------------------------------------------------------------


def test_the_journal_records_before_the_change_and_undoes_last_first(tmp_path: Path) -> None:
    journal = MoveJournal.begin(tmp_path / "vip-move", inventory=tmp_path / "hardway.toml",
                                old_vip=OLD, new_vip=NEW, layout={"active_set": 10})
    first = journal.record("aliases", "controller-0", {"present": False})
    second = journal.record("rules", "nucklehead", {"sets": {}})
    again = MoveJournal.load(tmp_path / "vip-move")
    assert again is not None and [e.state for e in again.entries] == [EntryState.CHANGING] * 2
    journal.mark(first, EntryState.CHANGED)
    journal.keep("kubernetes-key.pem.before", b"KEY", secret=True)
    assert (os.stat(journal.directory / "kubernetes-key.pem.before").st_mode & 0o777) == 0o600
    assert (os.stat(journal.path).st_mode & 0o777) == 0o600
    assert [e.step for e in journal.pending()] == ["rules", "aliases"]
    journal.mark(second, EntryState.UNDONE)
    assert [e.step for e in journal.pending()] == ["aliases"]
    assert journal.status is MoveStatus.RUNNING and journal.status.open
    journal.status = MoveStatus.DONE
    assert not MoveJournal.load(tmp_path / "vip-move").status.open  # type: ignore[union-attr]


def test_a_damaged_journal_is_one_clear_paragraph(tmp_path: Path) -> None:
    directory = tmp_path / "vip-move"
    directory.mkdir()
    (directory / "journal.json").write_text('{"version": 7}')
    with pytest.raises(UserError, match=r"is damaged \(version 7, expected 1\); move it away"):
        MoveJournal.load(directory)
    assert MoveJournal.load(tmp_path / "elsewhere") is None


def test_a_rollback_preview_marks_nothing_undone(tmp_path: Path) -> None:
    from tui.core.lb.move_undo import undo_steps

    inventory = tmp_path / "hardway.toml"
    inventory.write_text(SEED)
    journal = MoveJournal.begin(tmp_path / "vip-move", inventory=inventory, old_vip=OLD,
                                new_vip=NEW, layout={})
    journal.keep("inventory.before", SEED.encode())
    journal.mark(journal.record("inventory", "local", {"after": "x"}), EntryState.CHANGED)
    ctx = MoveContext(cast(Any, None), cast(Any, None), cast(Any, None), OLD_LAYOUT,
                      NEW_LAYOUT, BACKENDS, tmp_path, cast(Any, None), journal=journal)
    (step,) = undo_steps(ctx)
    assert step.check is not None
    import asyncio

    assert asyncio.run(step.check("local")) == "hardway.toml is as before the move"
    assert list(journal.pending())  # a preview wrote nothing
    ctx.live = True
    asyncio.run(step.check("local"))
    assert not list(journal.pending())


# -- the result, as the CLI prints it --------------------------------------------------


def test_a_stopped_move_says_what_changed_and_how_to_undo() -> None:
    def step(kind: MoveStepKind, outcome: StepOutcome, changed: bool) -> StepResult:
        return StepResult(kind, kind.value, kind.value, outcome, changed, ())

    result = MoveResult(MoveAction.MOVE, OLD, NEW, MoveStatus.FAILED, (
        step(MoveStepKind.ALIASES, StepOutcome.DONE, True),
        step(MoveStepKind.RULES, StepOutcome.DONE, True),
        step(MoveStepKind.SWITCH, StepOutcome.FAILED, True),
        step(MoveStepKind.DNS, StepOutcome.NOT_RUN, False)), Path("/pki/vip-move/journal.json"))
    lines = result_lines(result)
    assert lines[2] == "[FAIL]  3. switch"
    assert "Stopped at `switch`. Changed: aliases, rules, switch. Not changed: dns." in lines
    assert lines[-1] == ("Undo the changes with `hardway vip move --rollback` (journal "
                         "/pki/vip-move/journal.json).")


def test_the_gate_lets_the_move_and_the_app_open_a_misplaced_vip(seed: Any) -> None:
    from tui.core.inventory.gate import InventoryNotRunnable, require_runnable

    with pytest.raises(InventoryNotRunnable, match=r"(?s)run refused: .*api\.vip: api\.vip "
                                                   r"10\.10\.0\.100 is inside networks\.nodes"):
        require_runnable(seed, "run")
    findings = require_runnable(seed, "vip move", allow=("api.vip",))
    assert [f.key for f in findings if f.severity == "error"] == ["api.vip"]


class _Unreachable:
    """A fleet whose host answers neither commands nor SFTP (a controller just lost)."""

    def __init__(self, missing: bool = False) -> None:
        self.missing = missing

    async def run(self, names: list[str], command: str) -> dict[str, Any]:
        from tui.core.fleet.fleet import CommandResult

        return {names[0]: CommandResult(names[0], "", "", None, 0.0,
                                        error="No route to host")}

    async def get(self, name: str, path: str) -> bytes:
        from tui.core.fleet.sftp import RemoteFileMissing

        if self.missing:
            raise RemoteFileMissing(f"Cannot read {path} from {name}: no such file.")
        raise UserError(f"Cannot read {path} from {name}: No route to host.")


def test_an_unreadable_host_is_never_recorded_as_absent(tmp_path: Path) -> None:
    """The journal must not say "the alias / the unit was absent" because the host could
    not be read: the rollback would then delete them."""
    import asyncio

    from tui.core.lb.move_steps import alias_present, remote_file
    from tui.core.plan import StepFailed

    def ctx(fleet: _Unreachable) -> MoveContext:
        return MoveContext(cast(Any, None), cast(Any, fleet), cast(Any, None), OLD_LAYOUT,
                           NEW_LAYOUT, BACKENDS, tmp_path, cast(Any, None))

    with pytest.raises(StepFailed, match=r"cannot read lo on controller-2 .*No route to host"):
        asyncio.run(alias_present(ctx(_Unreachable()), "controller-2", OLD))
    with pytest.raises(StepFailed, match="No route to host"):
        asyncio.run(remote_file(ctx(_Unreachable()), "controller-2", "/etc/x"))
    assert asyncio.run(remote_file(ctx(_Unreachable(missing=True)), "controller-2",
                                   "/etc/x")) is None
