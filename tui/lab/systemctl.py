"""``systemctl`` on a lab host: the supervisor's command line, with systemd's wording.

:func:`systemctl` runs one command line against a host's
:class:`~tui.lab.supervisor.Supervisor` and writes to an :class:`~tui.lab.control.Output`
(the client's stdout and stderr); it returns systemctl's exit status (``is-active``: 0 or
3, ``status``: 0, 3 or 4, unknown units: 5, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable

from tui.lab.control import Output
from tui.lab.service import Service, ServiceError, exit_status_text, unit_name
from tui.lab.supervisor import Supervisor


class UsageError(Exception):
    """A bad command line: the message, printed to stderr, and exit status 1."""


def _format_time(stamp: float) -> str:
    return time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(stamp)) if stamp else ""


def _ago(stamp: float) -> str:
    seconds = max(0, int(time.time() - stamp))
    parts = []
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return " ".join(parts[:2])


# -- systemctl --------------------------------------------------------------------------

_VALUE_OPTIONS = {"-p": "property", "--property": "property", "-n": "lines",
                  "--lines": "lines", "-t": "type", "--type": "type", "--state": "state",
                  "-o": "output", "--output": "output", "-s": "signal", "--signal": "signal",
                  "-H": "host", "--host": "host", "-M": "machine", "--machine": "machine"}
_FLAG_OPTIONS = {"-q": "quiet", "--quiet": "quiet", "--now": "now", "--value": "value",
                 "-a": "all", "--all": "all", "-l": "full", "--full": "full",
                 "--no-pager": None, "--no-block": "no_block", "--no-legend": "no_legend",
                 "--plain": None, "--system": None, "--no-ask-password": None,
                 "-f": None, "--force": None, "--no-reload": None}


def parse_options(argv: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Split argv into options (name -> values) and positional words."""
    options: dict[str, list[str]] = {}
    words: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            words.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            words.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name in _VALUE_OPTIONS:
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"option '{name}' requires an argument")
                value = argv[i]
                i += 1
            options.setdefault(_VALUE_OPTIONS[name], []).append(value)
        elif name in _FLAG_OPTIONS:
            key = _FLAG_OPTIONS[name]
            if key is not None:
                options.setdefault(key, []).append("1")
        elif len(arg) > 2 and arg[1] != "-" and arg[:2] in _VALUE_OPTIONS:
            options.setdefault(_VALUE_OPTIONS[arg[:2]], []).append(arg[2:])  # -pExecStart
        elif arg == "--user":
            raise UsageError("Failed to connect to bus: No medium found")
        else:
            raise UsageError(f"unrecognized option '{arg}'")
    return options, words


Handler = Callable[[Supervisor, dict[str, list[str]], list[str], Output], Awaitable[int]]


async def systemctl(supervisor: Supervisor, argv: list[str], out: Output) -> int:
    """Run ``systemctl ARGV`` against ``supervisor``; returns the exit status."""
    try:
        options, words = parse_options(argv)
    except UsageError as exc:
        await out.err(f"systemctl: {exc}\n")
        return 1
    verb = words[0] if words else "list-units"
    handler = _VERBS.get(verb)
    if handler is None:
        await out.err(f"Unknown command verb {verb}.\n")
        return 1
    names = words[1:]
    if verb in _NEEDS_UNITS and not names:
        await out.err("Too few arguments.\n")
        return 1
    return await handler(supervisor, options, names, out)


async def _warn_changed(supervisor: Supervisor, name: str, out: Output) -> None:
    if supervisor.changed_on_disk(name):
        await out.err(f"Warning: The unit file, source configuration file or drop-ins of "
                      f"{unit_name(name)} changed on disk. Run 'systemctl daemon-reload' to "
                      "reload units.\n")


async def _job(verb: str, action: Callable[[str], Awaitable[None]], supervisor: Supervisor,
               names: list[str], out: Output,
               options: dict[str, list[str]] | None = None) -> int:
    status = 0
    for name in names:
        await _warn_changed(supervisor, name, out)
        if options and "no_block" in options:  # enqueue the job, do not wait for it
            if supervisor.load_quietly(name).load_state == "not-found":
                await out.err(f"Failed to {verb} {unit_name(name)}: Unit {unit_name(name)} "
                              "not found.\n")
                status = status or 5
                continue
            _background(action(name))
            continue
        try:
            await action(name)
        except ServiceError as exc:
            message = exc.message
            if not message.startswith("Job for"):
                message = f"Failed to {verb} {unit_name(name)}: {message}"
            await out.err(message + "\n")
            status = status or exc.status
    return status


_JOBS: set[asyncio.Future[None]] = set()


def _background(job: Awaitable[None]) -> None:
    """Run a ``--no-block`` job; its failure shows in ``systemctl status`` and the journal."""
    async def run() -> None:
        with contextlib.suppress(ServiceError):
            await job

    task = asyncio.ensure_future(run())
    _JOBS.add(task)
    task.add_done_callback(_JOBS.discard)


async def _start(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                 out: Output) -> int:
    return await _job("start", sv.start, sv, names, out, options)


async def _stop(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                out: Output) -> int:
    return await _job("stop", sv.stop, sv, names, out, options)


async def _restart(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                   out: Output) -> int:
    return await _job("restart", sv.restart, sv, names, out, options)


async def _try_restart(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                       out: Output) -> int:
    async def maybe(name: str) -> None:
        if sv.service(name).running:
            await sv.restart(name)
    return await _job("try-restart", maybe, sv, names, out)


async def _reload(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                  out: Output) -> int:
    for name in names:
        unit = unit_name(name)
        await out.err(f"Failed to reload {unit}: Job type reload is not applicable for unit "
                      f"{unit}.\n")
    return 1


async def _daemon_reload(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                         out: Output) -> int:
    sv.daemon_reload()
    return 0


async def _enable(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                  out: Output) -> int:
    for name in names:
        try:
            messages = sv.enable(name)
        except ServiceError as exc:
            await out.err(exc.message + "\n")
            return exc.status
        for message in messages:
            await out.err(message + "\n")
    if "now" in options:
        return await _job("start", sv.start, sv, names, out)
    return 0


async def _disable(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                   out: Output) -> int:
    for name in names:
        if sv.load_quietly(name).load_state == "not-found":
            await out.err(f"Failed to disable unit: Unit file {unit_name(name)} does not "
                          "exist.\n")
            return 1
        for message in sv.disable(name):
            await out.err(message + "\n")
    if "now" in options:
        return await _job("stop", sv.stop, sv, names, out, options)
    return 0


def _state_of(sv: Supervisor, name: str) -> tuple[Service | None, str]:
    service = sv.services.get(unit_name(name))
    return service, service.active_state if service else "inactive"


async def _is_active(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                     out: Output) -> int:
    states = [_state_of(sv, name)[1] for name in names]
    if "quiet" not in options:
        await out.out("".join(state + "\n" for state in states))
    return 0 if "active" in states else 3


async def _is_failed(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                     out: Output) -> int:
    states = [_state_of(sv, name)[1] for name in names]
    if "quiet" not in options:
        await out.out("".join(state + "\n" for state in states))
    return 0 if "failed" in states else 1


async def _is_enabled(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                      out: Output) -> int:
    status = 1
    for name in names:
        state = sv.is_enabled(name)
        if state == "not-found":
            await out.err(f"Failed to get unit file state for {unit_name(name)}: No such file "
                          "or directory\n")
            continue
        if "quiet" not in options:
            await out.out(state + "\n")
        if state in {"enabled", "static"}:
            status = 0
    return status


async def _reset_failed(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                        out: Output) -> int:
    targets = [sv.services[unit_name(n)] for n in names if unit_name(n) in sv.services] \
        if names else list(sv.services.values())
    for service in targets:
        service.reset_failed()
    return 0


async def _cat(sv: Supervisor, options: dict[str, list[str]], names: list[str],
               out: Output) -> int:
    status = 0
    for index, name in enumerate(names):
        definition = sv.load_quietly(name)
        if definition.load_state == "not-found":
            await out.err(f"No files found for {unit_name(name)}.\n")
            status = 1
            continue
        await _warn_changed(sv, name, out)
        paths = [definition.fragment, *_dropins(sv, definition.name)]
        for number, logical in enumerate(paths):
            try:
                text = sv.host.path(logical).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            gap = "\n" if index or number else ""
            await out.out(f"{gap}# {logical}\n{text}")
    return status


def _dropins(sv: Supervisor, name: str) -> list[str]:
    directory = sv.units_path / f"{name}.d"
    if not directory.is_dir():
        return []
    logical = f"{sv.host.units_dir.rstrip('/')}/{name}.d"
    return [f"{logical}/{p.name}" for p in sorted(directory.glob("*.conf"))]


def _exec_status(service: Service) -> str:
    command = service.running_command
    if command is None:
        return ""
    start = f"[{_format_time(service.exec_start_time)}]" if service.exec_start_time else "[n/a]"
    running = service.running
    stop = "[n/a]" if running or not service.exec_exit_time else \
        f"[{_format_time(service.exec_exit_time)}]"
    code = "(null)" if running else service.exec_code or "(null)"
    status = "0/0" if running else str(service.exec_status)
    return (f"{{ path={command.path} ; argv[]={command.display()} ; ignore_errors="
            f"{'yes' if command.ignore_errors else 'no'} ; start_time={start} ; stop_time="
            f"{stop} ; pid={service.exec_pid} ; code={code} ; status={status} }}")


def _exec_lines(sv: Supervisor, name: str) -> list[str]:
    """``ExecStart=`` values: the loaded commands, with the last run's status."""
    definition = sv.load_quietly(name)
    service = sv.services.get(definition.name)
    if definition.load_state == "not-found":
        return []
    lines = []
    for command in definition.exec_start:
        if service is not None and service.running_command == command:
            lines.append(_exec_status(service))
        else:
            lines.append(f"{{ path={command.path} ; argv[]={command.display()} ; "
                         f"ignore_errors={'yes' if command.ignore_errors else 'no'} ; "
                         "start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; "
                         "status=0/0 }")
    return lines


def _properties(sv: Supervisor, name: str) -> list[tuple[str, str]]:
    unit = unit_name(name)
    service = sv.services.get(unit)
    definition = service.definition if service else sv.load_quietly(unit)
    loaded = definition.load_state != "not-found"
    props: list[tuple[str, str]] = [
        ("Type", definition.service_type if loaded else ""),
        ("Restart", definition.restart if loaded else ""),
        ("RestartUSec", str(int(definition.restart_sec * 1_000_000)) if loaded else ""),
        ("MainPID", str(service.main_pid if service else 0)),
        ("ExecMainStartTimestamp", _format_time(service.exec_start_time) if service else ""),
        ("ExecMainExitTimestamp", _format_time(service.exec_exit_time) if service else ""),
        ("ExecMainPID", str(service.exec_pid if service else 0)),
        ("ExecMainCode", {"exited": "1", "killed": "2", "dumped": "3"}.get(
            service.exec_code, "0") if service else "0"),
        ("ExecMainStatus", str(_numeric_status(service)) if service else "0"),
        ("NRestarts", str(service.n_restarts if service else 0)),
        ("Result", service.result if service else "success"),
    ]
    props += [("ExecStart", line) for line in _exec_lines(sv, unit)]
    props += [
        ("Id", unit),
        ("Names", unit),
        ("Description", definition.description if loaded else unit),
        ("LoadState", definition.load_state),
        ("ActiveState", service.active_state if service else "inactive"),
        ("SubState", service.sub_state if service else "dead"),
        ("FragmentPath", definition.fragment),
        ("DropInPaths", " ".join(definition.dropins)),
        ("UnitFileState", sv.is_enabled(unit) if loaded else ""),
        ("StateChangeTimestamp", _format_time(service.state_change_time) if service else ""),
        ("NeedDaemonReload", "yes" if sv.changed_on_disk(unit) else "no"),
    ]
    if definition.config is not None:
        environment = " ".join(definition.config.values("Service", "Environment"))
        props.append(("Environment", environment))
    return props


def _numeric_status(service: Service) -> int:
    status = service.exec_status
    if isinstance(status, int):
        return status
    with contextlib.suppress(KeyError):
        return int(signal.Signals["SIG" + status])
    return 0


async def _show(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                out: Output) -> int:
    wanted = [p for value in options.get("property", []) for p in value.split(",") if p]
    value_only = "value" in options
    blocks = []
    for name in names or ["-"]:
        if name == "-":
            props = [("Version", "252 (hardway lab)"), ("Hostname", sv.host.name)]
        else:
            props = _properties(sv, name)
        if wanted:
            props = [(k, v) for key in wanted for (k, v) in props if k == key]
        elif "all" not in options:
            props = [(k, v) for k, v in props if v != ""]
        blocks.append("".join((v if value_only else f"{k}={v}") + "\n" for k, v in props))
    await out.out("\n".join(blocks))
    return 0


_BULLETS = {"active": "\u25cf", "failed": "\u00d7", "activating": "\u25cf",
            "deactivating": "\u25cf"}


async def _status(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                  out: Output) -> int:
    lines_wanted = int((options.get("lines") or ["10"])[-1] or 10)
    worst = 0
    texts = []
    for name in names:
        unit = unit_name(name)
        await _warn_changed(sv, unit, out)
        service = sv.services.get(unit)
        definition = service.definition if service else sv.load_quietly(unit)
        if definition.load_state == "not-found":
            await out.err(f"Unit {unit} could not be found.\n")
            worst = max(worst, 4)
            continue
        texts.append(_status_text(sv, service, unit, lines_wanted))
        if service is None or service.active_state != "active":
            worst = max(worst, 3)
    await out.out("\n".join(texts))
    return worst


def _status_text(sv: Supervisor, service: Service | None, unit: str, lines_wanted: int) -> str:
    definition = service.definition if service else sv.load_quietly(unit)
    state = service.active_state if service else "inactive"
    sub = service.sub_state if service else "dead"
    bullet = _BULLETS.get(state, "\u25cb")
    enabled = sv.is_enabled(unit)
    out = [f"{bullet} {unit} - {definition.description}",
           f"     Loaded: {definition.load_state} ({definition.fragment}; {enabled}; "
           "vendor preset: enabled)"]
    active = f"{state} ({sub})"
    if service is not None and service.result != "success" and state in {"failed",
                                                                         "activating"}:
        active += f" (Result: {service.result})"
    if service is not None and service.state_change_time:
        active += (f" since {_format_time(service.state_change_time)}; "
                   f"{_ago(service.state_change_time)} ago")
    out.append(f"     Active: {active}")
    docs = definition.setting("Unit", "Documentation")
    if docs:
        out.append(f"       Docs: {docs}")
    if service is not None and service.running_command is not None and not service.running \
            and service.exec_code:
        status = exit_status_text(service.exec_code, service.exec_status)
        out.append(f"    Process: {service.exec_pid} ExecStart="
                   f"{service.running_command.display()} (code={service.exec_code}, "
                   f"status={status})")
        out.append(f"   Main PID: {service.exec_pid} (code={service.exec_code}, "
                   f"status={status})")
    if service is not None and service.running:
        comm = os.path.basename(service.running_command.path) if service.running_command \
            else ""
        out.append(f"   Main PID: {service.main_pid} ({comm})")
        out.append(f"     CGroup: /system.slice/{unit}")
        if service.running_command is not None:
            out.append(f"             \u2514\u2500{service.main_pid} "
                       f"{service.running_command.display()}")
    entries = sv.journal.entries([unit])[-lines_wanted:] if lines_wanted > 0 else []
    if entries:
        out.append("")
        out += [sv.journal.format(entry) for entry in entries]
    return "\n".join(out) + "\n"


async def _list_units(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                      out: Output) -> int:
    show_all = "all" in options
    rows = []
    for name, service in sorted(sv.services.items()):
        if not show_all and service.active_state == "inactive":
            continue
        rows.append((name, service.definition.load_state, service.active_state,
                     service.sub_state, service.definition.description))
    width = max([len("UNIT")] + [len(r[0]) for r in rows])
    lines = [f"  {'UNIT':<{width}} LOAD   ACTIVE SUB     DESCRIPTION"]
    lines += [f"  {n:<{width}} {lo:<6} {a:<6} {s:<7} {d}" for n, lo, a, s, d in rows]
    lines += ["", "LOAD   = Reflects whether the unit definition was properly loaded.",
              "ACTIVE = The high-level unit activation state, i.e. generalization of SUB.",
              "SUB    = The low-level unit activation state, values depend on unit type.",
              f"{len(rows)} loaded units listed."]
    if "no_legend" in options:
        lines = lines[1:len(rows) + 1]
    await out.out("\n".join(lines) + "\n")
    return 0


async def _list_unit_files(sv: Supervisor, options: dict[str, list[str]], names: list[str],
                           out: Output) -> int:
    files = sv.unit_files()
    width = max([len("UNIT FILE")] + [len(n) for n in files])
    lines = [f"{'UNIT FILE':<{width}} STATE    VENDOR PRESET"]
    lines += [f"{name:<{width}} {sv.is_enabled(name):<8} enabled" for name in files]
    lines += ["", f"{len(files)} unit files listed."]
    await out.out("\n".join(lines) + "\n")
    return 0


_VERBS: dict[str, Handler] = {
    "start": _start, "stop": _stop, "restart": _restart, "try-restart": _try_restart,
    "reload-or-restart": _restart, "reload": _reload, "daemon-reload": _daemon_reload,
    "daemon-reexec": _daemon_reload, "enable": _enable, "disable": _disable,
    "is-active": _is_active, "is-failed": _is_failed, "is-enabled": _is_enabled,
    "reset-failed": _reset_failed, "cat": _cat, "show": _show, "status": _status,
    "list-units": _list_units, "list-unit-files": _list_unit_files,
}
_NEEDS_UNITS = {"start", "stop", "restart", "try-restart", "reload-or-restart", "reload",
                "enable", "disable", "is-active", "is-failed", "is-enabled", "cat", "status"}
