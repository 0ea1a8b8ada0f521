"""``journalctl`` on a lab host: the journal of its services, in journalctl's format.

Supports ``-u UNIT`` (repeatable), ``-n N``, ``-f`` (follow until the client goes away),
``-o short|short-iso|cat``, ``-q``, ``-e``, and ignores ``--no-pager``, ``-b``, ``-x``.
"""

from __future__ import annotations

from tui.lab.control import Output
from tui.lab.service import unit_name
from tui.lab.supervisor import Supervisor

# -- journalctl -------------------------------------------------------------------------

async def journalctl(supervisor: Supervisor, argv: list[str], out: Output) -> int:
    """Run ``journalctl ARGV``: ``-u UNIT``, ``-n N``, ``-f``, ``-o short|cat``, ``-q``."""
    units: list[str] = []
    lines: int | None = None
    follow = False
    output = "short"
    quiet = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        name, eq, value = arg.partition("=")
        if name in {"-u", "--unit", "-n", "--lines", "-o", "--output"}:
            if not eq:
                if name in {"-n", "--lines"} and (i >= len(argv) or
                                                  not argv[i].lstrip("+").isdigit()):
                    value = "10"
                elif i >= len(argv):
                    await out.err(f"journalctl: option '{name}' requires an argument\n")
                    return 1
                else:
                    value = argv[i]
                    i += 1
            if name in {"-u", "--unit"}:
                units.append(unit_name(value))
            elif name in {"-o", "--output"}:
                output = value
            else:
                lines = int(value.lstrip("+")) if value.lstrip("+").isdigit() else 10
        elif arg.startswith("-u") and len(arg) > 2:
            units.append(unit_name(arg[2:]))
        elif arg.startswith("-n") and arg[2:].isdigit():
            lines = int(arg[2:])
        elif arg in {"-f", "--follow"}:
            follow = True
        elif arg in {"-q", "--quiet"}:
            quiet = True
        elif arg in {"-e", "--pager-end"}:
            lines = 1000 if lines is None else lines
        elif arg in {"--no-pager", "-b", "--boot", "-x", "--catalog", "-a", "--all",
                     "-l", "--full", "--no-hostname", "--system"}:
            continue
        elif arg in {"-xe", "-xeu", "-eu", "-fu"}:
            follow = follow or "f" in arg
            if "u" in arg:
                if i >= len(argv):
                    await out.err(f"journalctl: option '{arg}' requires an argument\n")
                    return 1
                units.append(unit_name(argv[i]))
                i += 1
        else:
            await out.err(f"journalctl: unrecognized option '{arg}'\n")
            return 1
    if output not in {"short", "cat", "short-iso"}:
        await out.err(f"journalctl: Unknown output format '{output}'.\n")
        return 1
    journal = supervisor.journal
    wanted = units or None
    entries = journal.entries(wanted)
    if lines is None and follow:
        lines = 10
    if lines is not None:
        entries = entries[-lines:] if lines else []
    if entries:
        await out.out("".join(journal.format(e, output) + "\n" for e in entries))
    elif not quiet and not follow:
        await out.out("-- No entries --\n")
    if not follow:
        return 0
    seen = journal.last_seq
    while True:
        await journal.wait(seen)
        fresh = journal.entries(wanted, after=seen)
        seen = journal.last_seq
        if fresh:
            await out.out("".join(journal.format(e, output) + "\n" for e in fresh))


def follows(argv: list[str]) -> bool:
    """True when ``journalctl ARGV`` streams until the client goes away (``-f``)."""
    return any(arg in {"-f", "--follow", "-fu"} for arg in argv)
