"""The lab hypervisor's ``ipfw``: FreeBSD's command for the subset a KTHW user needs.

Installed as ``/sbin/ipfw`` on the lab's hypervisor, it keeps the rules in a JSON state
file (one per hypervisor) that the user-space forwarder (:mod:`tui.lab.forwarder`)
obeys.  Supported, with ipfw(8)'s syntax, output and error messages (taken from
FreeBSD's ``sbin/ipfw``)::

    ipfw [-q] add [N] [set S] [prob P] {fwd IP[,PORT] | allow | deny | count}
         {tcp | udp | ip} from SRC to DST [dst-port PORT] [keep-state]
    ipfw [-S] list [N ...]
    ipfw [-q] delete N ...          ipfw [-q] delete set S
    ipfw [-f | -q] flush
    ipfw set show | enable S ... | disable S ... | swap A B | move [rule] X to Y
    ipfw table NAME create | add ADDR[/LEN] [VALUE] | delete ADDR[/LEN] | list | destroy

Every change is one atomic replace of the state file under an exclusive lock, so a
``set swap`` reaches the forwarder's next new connection all at once.  The default rule
``65535 deny ip from any to any`` (set 31) is always there.  ``ipfw show``, ``zero``
and ``resetlog`` (packet counters) are refused with a clear message.

Run as ``python -m tui.lab.ipfw --state FILE ARGS...``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import ipaddress
import json
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tui.core.lb.rules import (
    AUTOINC_STEP,
    DEFAULT_RULE,
    EX_DATAERR,
    EX_OSERR,
    EX_UNAVAILABLE,
    EX_USAGE,
    RESVD_SET,
    Action,
    IpfwError,
    IpfwRule,
    compile_add,
)

DEFAULT_DENY = IpfwRule(number=DEFAULT_RULE, set=RESVD_SET, action=Action.DENY)
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,63}$")


@dataclass
class Table:
    """An ``addr`` lookup table: ``ADDR/LEN -> value``."""

    set: int = 0
    entries: dict[str, int] = field(default_factory=dict)

    def contains(self, address: str) -> bool:
        """Whether ``address`` falls in one of the table's prefixes."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(key, strict=False) for key in self.entries)


@dataclass
class IpfwState:
    """The firewall of one hypervisor: static rules, disabled sets, tables."""

    rules: list[tuple[int, IpfwRule]] = field(default_factory=list)
    disabled_sets: set[int] = field(default_factory=set)
    tables: dict[str, Table] = field(default_factory=dict)
    seq: int = 0

    def ordered(self) -> list[IpfwRule]:
        """Every rule in evaluation order (number, then insertion), default rule last."""
        return [r for _s, r in sorted(self.rules, key=lambda sr: (sr[1].number, sr[0]))] + [
            DEFAULT_DENY]

    def enabled(self, rule: IpfwRule) -> bool:
        """Whether ``rule``'s set takes part in matching."""
        return rule.set == RESVD_SET or rule.set not in self.disabled_sets

    def add(self, rule: IpfwRule) -> IpfwRule:
        """Add ``rule`` (number 0: the last rule's number + autoinc step)."""
        if rule.number == 0:
            last = max((r.number for _s, r in self.rules), default=0)
            number = last + AUTOINC_STEP if last < DEFAULT_RULE - AUTOINC_STEP else last
            rule = dataclasses.replace(rule, number=number)
        if rule.number >= DEFAULT_RULE:
            raise IpfwError("getsockopt(IP_FW_XADD): Invalid argument", EX_UNAVAILABLE)
        self.seq += 1
        self.rules.append((self.seq, rule))
        return rule

    # -- persistence ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The state as JSON-able data."""
        rules = []
        for seq, rule in self.rules:
            data = dataclasses.asdict(rule)
            data["action"] = rule.action.value
            data["seq"] = seq
            rules.append(data)
        return {"version": 1, "seq": self.seq, "rules": rules,
                "disabled_sets": sorted(self.disabled_sets),
                "tables": {n: {"set": t.set, "entries": t.entries}
                           for n, t in self.tables.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IpfwState:
        """Rebuild a state written by :meth:`to_json`."""
        rules = []
        for item in data.get("rules", []):
            item = dict(item)
            seq = int(item.pop("seq"))
            item["action"] = Action(item["action"])
            rules.append((seq, IpfwRule(**item)))
        tables = {n: Table(set=int(t.get("set", 0)), entries=dict(t.get("entries", {})))
                  for n, t in data.get("tables", {}).items()}
        return cls(rules=rules, disabled_sets=set(data.get("disabled_sets", [])),
                   tables=tables, seq=int(data.get("seq", 0)))


def load_state(path: Path) -> IpfwState:
    """The state in ``path`` (an empty firewall when the file does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return IpfwState()
    return IpfwState.from_json(json.loads(text)) if text.strip() else IpfwState()


def save_state(path: Path, state: IpfwState) -> None:
    """Write ``state`` atomically (temp file in the same directory, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(state.to_json(), handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def locked_state(path: Path) -> Iterator[IpfwState]:
    """Load, yield and (on success) save the state under an exclusive lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = load_state(path)
        before = json.dumps(state.to_json(), sort_keys=True)
        yield state
        if json.dumps(state.to_json(), sort_keys=True) != before:
            save_state(path, state)


# -- the command ------------------------------------------------------------------------------


@dataclass
class _Options:
    quiet: bool = False
    show_sets: bool = False
    force: bool = False


class _Io:
    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out, self.err = out, err

    def warnx(self, message: str) -> None:
        self.err.write(f"ipfw: {message}\n")


def _substr(word: str, keyword: str) -> bool:
    return bool(word) and keyword.startswith(word)


def _set_number(word: str, message: str) -> int:
    if not word[:1].isdigit():
        raise IpfwError(message.format(word), EX_DATAERR)
    value = int(re.match(r"\d+", word).group(0))  # type: ignore[union-attr]  # atoi
    if value > RESVD_SET:
        raise IpfwError(message.format(word), EX_DATAERR)
    return value


def _cmd_list(state: IpfwState, args: Sequence[str], opts: _Options, io: _Io) -> int:
    wanted = {int(a) for a in args if a.isdigit()}
    for rule in state.ordered():
        if wanted and rule.number not in wanted:
            continue
        disabled = not state.enabled(rule)
        if disabled and not opts.show_sets:
            continue
        io.out.write(dataclasses.replace(rule, disabled=disabled).line(
            show_sets=opts.show_sets) + "\n")
    return 0


def _cmd_delete(state: IpfwState, args: Sequence[str], opts: _Options, io: _Io) -> int:
    if not args:
        raise IpfwError("missing rule specification", EX_USAGE)
    av = list(args)
    if _substr(av[0], "set") and len(av) > 1:
        for word in av[1:]:
            if not word[:1].isdigit():
                break
            number = int(re.match(r"\d+", word).group(0)) & 31  # type: ignore[union-attr]
            state.rules = [(s, r) for s, r in state.rules if r.set != number]
        return 0
    status = 0
    for word in av:
        if not word[:1].isdigit():
            break
        start_text, _, end_text = word.partition("-")
        start = int(re.match(r"\d+", start_text).group(0)) & 0xFFFF  # type: ignore[union-attr]
        end = int(end_text) & 0xFFFF if end_text.isdigit() else start
        kept = [(s, r) for s, r in state.rules if not start <= r.number <= end]
        if len(kept) == len(state.rules):
            status = EX_UNAVAILABLE
            if not opts.quiet:
                io.warnx(f"no rules rules in {start}-{end} range" if start != end
                         else f"rule {start} not found")
        state.rules = kept
    if status and not opts.force:
        return status
    return 0


def _cmd_flush(state: IpfwState, opts: _Options, io: _Io, stdin: TextIO) -> int:
    if not opts.force and not opts.quiet:
        io.out.write("Are you sure? [yn] ")
        io.out.flush()
        answer = (stdin.readline() or "n").strip().upper()[:1]
        io.out.write("\n")
        if answer != "Y":
            return 0
    state.rules = [(s, r) for s, r in state.rules if r.set == RESVD_SET]
    if not opts.quiet:
        io.out.write("Flushed all rules.\n")
    return 0


def _cmd_set(state: IpfwState, args: Sequence[str], io: _Io) -> int:
    if not args:
        raise IpfwError("set needs command", EX_USAGE)
    word, rest = args[0], list(args[1:])
    if _substr(word, "show"):
        disabled = [i for i in range(RESVD_SET) if i in state.disabled_sets]
        enabled = [i for i in range(RESVD_SET) if i not in state.disabled_sets]
        line = "disable" + "".join(f" {i}" for i in disabled) if disabled else ""
        line += (" enable" if disabled else "enable") + "".join(f" {i}" for i in enabled)
        io.out.write(line + "\n")
        return 0
    if _substr(word, "swap"):
        if len(rest) < 2:
            raise IpfwError("set swap needs 2 set numbers\n", EX_USAGE)
        a = _set_number(rest[0], "invalid set number {}\n")
        b = _set_number(rest[1], "invalid set number {}\n")
        state.rules = [(s, dataclasses.replace(r, set=b if r.set == a else a)
                        if r.set in (a, b) else r) for s, r in state.rules]
        return 0
    if _substr(word, "move"):
        by_rule = bool(rest) and _substr(rest[0], "rule")
        if by_rule:
            rest = rest[1:]
        if len(rest) != 3 or not _substr(rest[1], "to"):
            raise IpfwError("syntax: set move [rule] X to Y\n", EX_USAGE)
        if not rest[0][:1].isdigit() or (not by_rule and int(rest[0]) > RESVD_SET) or (
                by_rule and int(rest[0]) == DEFAULT_RULE):
            raise IpfwError(f"invalid source number {rest[0]}\n", EX_DATAERR)
        if not rest[2][:1].isdigit() or int(re.match(r"\d+", rest[2]).group(0)) > RESVD_SET:  # type: ignore[union-attr]
            raise IpfwError(f"invalid dest. set {rest[1]}\n", EX_DATAERR)
        source, target = int(rest[0]), int(re.match(r"\d+", rest[2]).group(0))  # type: ignore[union-attr]
        state.rules = [(s, dataclasses.replace(r, set=target)
                        if (r.number if by_rule else r.set) == source else r)
                       for s, r in state.rules]
        return 0
    if _substr(word, "disable") or _substr(word, "enable"):
        which = _substr(word, "enable")
        masks: dict[bool, set[int]] = {True: set(), False: set()}
        for item in rest:
            if item[:1].isdigit():
                number = int(re.match(r"\d+", item).group(0))  # type: ignore[union-attr]
                if number > RESVD_SET:
                    raise IpfwError(f"invalid set number {number}\n", EX_DATAERR)
                masks[which].add(number)
            elif _substr(item, "disable"):
                which = False
            elif _substr(item, "enable"):
                which = True
            else:
                raise IpfwError(f"invalid set command {item}\n", EX_DATAERR)
        if masks[True] & masks[False]:
            raise IpfwError("cannot enable and disable the same set\n", EX_DATAERR)
        state.disabled_sets = (state.disabled_sets - masks[True]) | (
            masks[False] - {RESVD_SET})
        return 0
    raise IpfwError(f"invalid set command {word}\n", EX_USAGE)


def _table_key(word: str) -> str:
    address, _, length = word.partition("/")
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        raise IpfwError(f"hostname ``{address}'' unknown", 68) from None
    if length and (not length.isdigit() or int(length) > 32):
        raise IpfwError(f"bad IPv4 mask width: {length}", EX_DATAERR)
    return f"{ip}/{int(length) if length else 32}"


def _cmd_table(state: IpfwState, args: Sequence[str], opts: _Options, io: _Io) -> int:
    if not args:
        raise IpfwError("table needs name", EX_USAGE)
    name = args[0]
    if name != "all" and not _TABLE_NAME.match(name):
        raise IpfwError(f"table name {name} is invalid", EX_USAGE)
    if len(args) < 2:
        raise IpfwError("table needs command", EX_USAGE)
    command, rest = args[1], list(args[2:])
    known = ("add", "delete", "create", "destroy", "flush", "list")
    matches = [k for k in known if _substr(command, k)]
    if not matches:
        raise IpfwError(f"table command {command} not supported in the lab "
                        f"(add, delete, create, destroy, flush, list)", EX_USAGE)
    tcmd = matches[0]
    if name == "all" and tcmd not in ("list", "flush", "destroy"):
        raise IpfwError("table name required", EX_USAGE)
    names = sorted(state.tables) if name == "all" else [name]
    if tcmd == "create":
        if name in state.tables:
            raise IpfwError("Table creation failed: File exists", EX_OSERR)
        state.tables[name] = Table()
        return 0
    if tcmd in ("list", "flush", "destroy") and name != "all" and name not in state.tables:
        what = {"list": "failed to request table info",
                "flush": f"failed to flush table {name} info",
                "destroy": f"failed to destroy table {name}"}[tcmd]
        raise IpfwError(f"{what}: No such process", EX_OSERR)
    if tcmd == "list":
        for table_name in names:
            table = state.tables[table_name]
            io.out.write(f"--- table({table_name}), set({table.set}) ---\n")
            for key, value in table.entries.items():
                io.out.write(f"{key} {value}\n")
        return 0
    if tcmd == "flush":
        for table_name in names:
            state.tables[table_name].entries.clear()
        return 0
    if tcmd == "destroy":
        for table_name in names:
            state.tables.pop(table_name, None)
        return 0
    if not rest:
        raise IpfwError("address required", EX_USAGE)
    key = _table_key(rest[0])
    if tcmd == "add":
        if name not in state.tables:
            if not opts.quiet:
                io.warnx(f"DEPRECATED: inserting data into non-existent table {name}. "
                         f"(auto-created)")
            state.tables[name] = Table()
        table = state.tables[name]
        value = int(rest[1]) if len(rest) > 1 and rest[1].isdigit() else 0
        if key in table.entries:
            if opts.quiet:
                return 0
            io.out.write(f"exists: {key} {value}\n")
            raise IpfwError("Adding record failed: record already exists", EX_OSERR)
        table.entries[key] = value
        if not opts.quiet:
            io.out.write(f"added: {key} {value}\n")
        return 0
    if name not in state.tables:
        raise IpfwError(f"Table {name} does not exist", EX_DATAERR)
    table = state.tables[name]
    if key not in table.entries:
        if opts.quiet:
            return 0
        io.out.write(f"notfound: {key} 0\n")
        raise IpfwError("Deleting record failed: record not found", EX_OSERR)
    value = table.entries.pop(key)
    if not opts.quiet:
        io.out.write(f"deleted: {key} {value}\n")
    return 0


def _options(argv: list[str]) -> tuple[_Options, list[str]]:
    opts = _Options()
    while argv and argv[0].startswith("-") and len(argv[0]) > 1:
        word = argv.pop(0)
        if word == "--":
            break
        for letter in word[1:]:
            if letter == "q":
                opts.quiet = True
            elif letter == "S":
                opts.show_sets = True
            elif letter == "f":
                opts.force = True
            elif letter in "acdenNtT":
                continue  # listing flags without effect in the lab
            else:
                raise IpfwError(f"illegal option -- {letter}", EX_USAGE)
    return opts, argv


def run(argv: Sequence[str], state_path: Path, *, stdout: TextIO | None = None,
        stderr: TextIO | None = None, stdin: TextIO | None = None) -> int:
    """Run one ``ipfw`` command line against ``state_path``; returns the exit status."""
    io = _Io(stdout or sys.stdout, stderr or sys.stderr)
    try:
        opts, av = _options(list(argv))
        if not av:
            raise IpfwError("missing command", EX_USAGE)
        word, rest = av[0], av[1:]
        if _substr(word, "list") or _substr(word, "print"):
            return _cmd_list(load_state(state_path), rest, opts, io)
        if _substr(word, "show") or _substr(word, "zero") or _substr(word, "resetlog"):
            raise IpfwError(f"{word}: packet counters are not kept by the hardway lab's "
                            f"ipfw; use `ipfw list` (or `ipfw -S list`)", EX_USAGE)
        with locked_state(state_path) as state:
            if _substr(word, "add"):
                rule = state.add(compile_add(rest))
                if not opts.quiet:
                    io.out.write(rule.line(show_sets=opts.show_sets) + "\n")
                return 0
            if _substr(word, "delete"):
                return _cmd_delete(state, rest, opts, io)
            if _substr(word, "flush"):
                return _cmd_flush(state, opts, io, stdin or sys.stdin)
            if _substr(word, "set"):
                return _cmd_set(state, rest, io)
            if _substr(word, "table"):
                return _cmd_table(state, rest, opts, io)
        raise IpfwError(f"bad command `{word}'", EX_USAGE)
    except IpfwError as exc:
        io.err.write(f"ipfw: {exc.message}\n")
        return exc.exit_code


def shim_script(state_path: Path, *, python: str = sys.executable,
                pythonpath: str | None = None) -> str:
    """A ``/sbin/ipfw`` for a lab host: runs this module on ``state_path``."""
    env = f"PYTHONPATH={shlex.quote(pythonpath)} " if pythonpath else ""
    return (f"#!/bin/sh\n# hardway lab: ipfw(8) for the hypervisor (rules in "
            f"{state_path})\nexec env {env}{shlex.quote(python)} -m tui.lab.ipfw "
            f"--state {shlex.quote(str(state_path))} \"$@\"\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tui.lab.ipfw --state FILE ARGS...`` (or $HARDWAY_IPFW_STATE)."""
    args = list(sys.argv[1:] if argv is None else argv)
    state = os.environ.get("HARDWAY_IPFW_STATE", "")
    if len(args) >= 2 and args[0] == "--state":
        state, args = args[1], args[2:]
    elif args and args[0].startswith("--state="):
        state, args = args[0].split("=", 1)[1], args[1:]
    if not state:
        sys.stderr.write("ipfw: no state file (--state FILE or HARDWAY_IPFW_STATE)\n")
        return EX_USAGE
    return run(args, Path(state))


if __name__ == "__main__":
    raise SystemExit(main())
