"""systemd unit files read the way systemd reads them.

Two jobs, both following systemd's own parser (``src/shared/conf-parser.c`` and
``config_parse_exec``) closely enough that a broken unit breaks in the lab as on a host:

* :func:`parse_unit` -- sections and ``Key=value`` lines.  A line ending in a backslash is
  joined with the next one, the backslash becoming a space; comment lines inside such a
  continuation are skipped.  A *missing* backslash therefore ends ``ExecStart=`` early and
  the following ``--flag=value`` line is read as an unknown key named ``--flag``:
  systemd logs ``Unknown key name '--flag' in section 'Service', ignoring.`` and so do we.
* :func:`split_exec` -- an ``ExecStart=`` value into its prefixes and argv words (quotes,
  C escapes, ``%`` specifiers); :func:`expand_environment` then substitutes ``$VAR`` and
  ``${VAR}`` the way systemd does when it executes the command.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

COMMENTS = "#;"
WHITESPACE = " \t\n\r"

UNIT_KEYS = frozenset({
    "Description", "Documentation", "Requires", "Requisite", "Wants", "BindsTo", "PartOf",
    "Upholds", "Conflicts", "Before", "After", "OnFailure", "OnSuccess", "PropagatesReloadTo",
    "ReloadPropagatedFrom", "JoinsNamespaceOf", "RequiresMountsFor", "OnFailureJobMode",
    "IgnoreOnIsolate", "StopWhenUnneeded", "RefuseManualStart", "RefuseManualStop",
    "AllowIsolate", "DefaultDependencies", "CollectMode", "FailureAction", "SuccessAction",
    "FailureActionExitStatus", "SuccessActionExitStatus", "JobTimeoutSec", "JobTimeoutAction",
    "JobTimeoutRebootArgument", "StartLimitIntervalSec", "StartLimitBurst", "StartLimitAction",
    "RebootArgument", "SourcePath", "ConditionPathExists", "ConditionPathIsDirectory",
    "ConditionFileIsExecutable", "ConditionHost", "ConditionVirtualization",
    "AssertPathExists",
})

SERVICE_KEYS = frozenset({
    "Type", "ExitType", "RemainAfterExit", "GuessMainPID", "PIDFile", "BusName", "ExecStart",
    "ExecStartPre", "ExecStartPost", "ExecCondition", "ExecReload", "ExecStop", "ExecStopPost",
    "RestartSec", "TimeoutStartSec", "TimeoutStopSec", "TimeoutAbortSec", "TimeoutSec",
    "RuntimeMaxSec", "WatchdogSec", "Restart", "SuccessExitStatus", "RestartPreventExitStatus",
    "RestartForceExitStatus", "RootDirectoryStartOnly", "NonBlocking", "NotifyAccess",
    "Sockets", "FileDescriptorStoreMax", "USBFunctionDescriptors", "OOMPolicy",
    "StartLimitIntervalSec", "StartLimitBurst", "StartLimitInterval",
    # exec and kill settings (systemd.exec / systemd.kill)
    "WorkingDirectory", "RootDirectory", "User", "Group", "DynamicUser", "SupplementaryGroups",
    "Environment", "EnvironmentFile", "PassEnvironment", "UnsetEnvironment", "UMask",
    "StandardInput", "StandardOutput", "StandardError", "SyslogIdentifier", "SyslogFacility",
    "SyslogLevel", "LimitNOFILE", "LimitNPROC", "LimitCORE", "LimitMEMLOCK", "LimitAS",
    "Nice", "OOMScoreAdjust", "CPUSchedulingPolicy", "IOSchedulingClass", "Delegate",
    "TasksMax", "MemoryMax", "MemoryLimit", "CPUQuota", "CPUAccounting", "MemoryAccounting",
    "KillMode", "KillSignal", "SendSIGKILL", "SendSIGHUP", "FinalKillSignal",
    "RuntimeDirectory", "StateDirectory", "LogsDirectory", "ConfigurationDirectory",
    "PrivateTmp", "ProtectSystem", "ProtectHome", "NoNewPrivileges", "ReadWritePaths",
    "AmbientCapabilities", "CapabilityBoundingSet",
})

INSTALL_KEYS = frozenset({"WantedBy", "RequiredBy", "Alias", "Also", "DefaultInstance"})

SECTION_KEYS: Mapping[str, frozenset[str]] = {
    "Unit": UNIT_KEYS, "Service": SERVICE_KEYS, "Install": INSTALL_KEYS,
}


class ExecSyntaxError(ValueError):
    """An ``Exec*=`` value systemd would refuse (bad quoting or escape)."""


@dataclass(frozen=True)
class UnitWarning:
    """What systemd logs while loading a unit: ``PATH:LINE: MESSAGE``."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class UnitFile:
    """A parsed unit: ``(key, value, line)`` assignments per section, plus warnings.

    Attributes:
        path: the unit's path as the host sees it (``/etc/systemd/system/NAME``).
        assignments: section name -> assignments in file order.
        warnings: everything systemd would log about the file.
    """

    path: str
    assignments: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    warnings: list[UnitWarning] = field(default_factory=list)

    def values(self, section: str, key: str) -> list[str]:
        """Every value of ``key`` in ``section``; an empty assignment resets the list."""
        found: list[str] = []
        for name, value, _line in self.assignments.get(section, []):
            if name == key:
                if value:
                    found.append(value)
                else:
                    found.clear()
        return found

    def value(self, section: str, key: str, default: str = "") -> str:
        """The last value of ``key`` in ``section`` (``default`` when unset)."""
        values = self.values(section, key)
        return values[-1] if values else default

    def line_of(self, section: str, key: str) -> int:
        """The line of the last assignment of ``key`` (0 when absent)."""
        lines = [line for name, _v, line in self.assignments.get(section, []) if name == key]
        return lines[-1] if lines else 0

    def extend(self, other: UnitFile) -> None:
        """Append a drop-in's assignments and warnings (drop-ins are read after the unit)."""
        for section, items in other.assignments.items():
            self.assignments.setdefault(section, []).extend(items)
        self.warnings.extend(other.warnings)


def ends_escaped(line: str) -> bool:
    """True when ``line`` ends in an unescaped backslash (systemd's continuation test)."""
    escaped = False
    for char in line:
        escaped = (not escaped) and char == "\\"
    return escaped


def parse_unit(text: str, path: str) -> UnitFile:
    """Parse unit file ``text`` as systemd does (see the module docstring).

    Args:
        text: the file's contents.
        path: the path to name in warnings (as the host sees it).
    """
    unit = UnitFile(path)
    section: str | None = None
    known_section = False
    continuation: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.lstrip(WHITESPACE)[:1] in tuple(COMMENTS):
            continue  # comment lines are skipped, inside a continuation too
        line = raw if continuation is None else continuation + raw
        continuation = None
        if ends_escaped(line):
            continuation = line[:-1] + " "
            continue
        section, known_section = _parse_line(unit, line.strip(WHITESPACE), number,
                                             section, known_section)
    if continuation is not None:
        _parse_line(unit, continuation.strip(WHITESPACE), len(text.splitlines()),
                    section, known_section)
    return unit


def _parse_line(unit: UnitFile, line: str, number: int, section: str | None,
                known_section: bool) -> tuple[str | None, bool]:
    """Handle one logical line; returns the (possibly new) section and whether it is known."""
    if not line or line[0] in COMMENTS:
        return section, known_section
    if line.startswith("["):
        if not line.endswith("]") or len(line) < 3:
            unit.warnings.append(UnitWarning(unit.path, number,
                                             f"Invalid section header '{line}'"))
            return None, False
        name = line[1:-1]
        known = name in SECTION_KEYS
        if not known and not name.startswith("X-"):
            unit.warnings.append(UnitWarning(unit.path, number,
                                             f"Unknown section '{name}'. Ignoring."))
        return name, known
    if section is None:
        unit.warnings.append(UnitWarning(unit.path, number,
                                         "Assignment outside of section. Ignoring."))
        return section, known_section
    if not known_section:
        return section, known_section
    if "=" not in line:
        unit.warnings.append(UnitWarning(unit.path, number, "Missing '=', ignoring line."))
        return section, known_section
    key, _, value = line.partition("=")
    key, value = key.strip(WHITESPACE), value.strip(WHITESPACE)
    if key in SECTION_KEYS[section]:
        unit.assignments.setdefault(section, []).append((key, value, number))
    elif not key.startswith("X-"):
        unit.warnings.append(UnitWarning(
            unit.path, number, f"Unknown key name '{key}' in section '{section}', ignoring."))
    return section, known_section


def is_comment(line: str) -> bool:
    """True for a comment line (``#`` or ``;`` first), which systemd skips even inside
    a continuation."""
    return line.lstrip(WHITESPACE)[:1] in tuple(COMMENTS)


# -- Exec lines ---------------------------------------------------------------------------

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", '"': '"', "'": "'", "s": " ", " ": " "}


@dataclass(frozen=True)
class ExecCommand:
    """One ``Exec*=`` command: the executable path, argv and systemd's prefixes.

    Attributes:
        path: the program to run (argv[0] unless the ``@`` prefix gave another).
        argv: the words as written, before environment substitution.
        ignore_errors: the ``-`` prefix (a failure is not a failure).
        prefixes: every prefix character used (``-``, ``@``, ``:``, ``+``, ``!``).
    """

    path: str
    argv: tuple[str, ...]
    ignore_errors: bool = False
    prefixes: str = ""

    def display(self) -> str:
        """argv as ``systemctl show`` prints it (words with spaces double-quoted)."""
        return " ".join(_display_word(word) for word in self.argv)


def _display_word(word: str) -> str:
    if word and not any(c in word for c in " \t\n\"'\\"):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _specifier(char: str, unit_name: str, hostname: str) -> str:
    stem = unit_name.rsplit(".", 1)[0]
    table = {"%": "%", "n": unit_name, "N": stem, "p": stem.split("@")[0], "P": stem,
             "i": stem.partition("@")[2], "I": stem.partition("@")[2], "H": hostname,
             "l": hostname.split(".")[0], "t": "/run", "S": "/var/lib", "C": "/var/cache",
             "L": "/var/log", "E": "/etc", "h": "/root", "u": "root", "U": "0", "T": "/tmp",
             "V": "/var/tmp"}
    if char not in table:
        raise ExecSyntaxError(f"Failed to resolve unit specifiers in '%{char}'")
    return table[char]


def split_words(value: str, *, unit_name: str = "", hostname: str = "",
                specifiers: bool = True) -> list[str]:
    """Split an ``Exec*=``/``Environment=`` value into words like systemd.

    Quotes (single or double, anywhere in a word) group; C escapes are decoded; ``%``
    specifiers are resolved when ``specifiers`` is true.

    Raises:
        ExecSyntaxError: an unterminated quote or a bad escape.
    """
    words: list[str] = []
    i, n = 0, len(value)
    while True:
        while i < n and value[i] in WHITESPACE:
            i += 1
        if i >= n:
            return words
        word: list[str] = []
        quote: str | None = None
        while i < n:
            char = value[i]
            if quote is None and char in WHITESPACE:
                break
            if char == "\\":
                if i + 1 >= n:
                    raise ExecSyntaxError(f"Unbalanced escape at the end of: {value}")
                escaped, i = _unescape(value, i + 1)
                word.append(escaped)
                continue
            if quote is None and char in "\"'":
                quote = char
            elif char == quote:
                quote = None
            elif specifiers and char == "%":
                if i + 1 >= n:
                    raise ExecSyntaxError(f"Trailing % in: {value}")
                word.append(_specifier(value[i + 1], unit_name, hostname))
                i += 1
            else:
                word.append(char)
            i += 1
        if quote is not None:
            raise ExecSyntaxError(f"Unbalanced quoting, ignoring: \"{value}\"")
        words.append("".join(word))


def _unescape(value: str, i: int) -> tuple[str, int]:
    """Decode the escape whose letter is at ``value[i]``; returns text and the next index."""
    char = value[i]
    if char in _ESCAPES:
        return _ESCAPES[char], i + 1
    if char == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", value[i + 1:i + 3]):
        return chr(int(value[i + 1:i + 3], 16)), i + 3
    if char in "01234567" and re.fullmatch(r"[0-7]{3}", value[i:i + 3]):
        return chr(int(value[i:i + 3], 8)), i + 3
    if char == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", value[i + 1:i + 5]):
        return chr(int(value[i + 1:i + 5], 16)), i + 5
    raise ExecSyntaxError(f"Failed to unescape '\\{char}' in: {value}")


def split_exec(value: str, *, unit_name: str = "", hostname: str = "") -> ExecCommand:
    """Parse one ``ExecStart=`` value (prefixes, quoting, escapes, specifiers).

    Raises:
        ExecSyntaxError: bad quoting/escapes, an empty command, or a relative path
            systemd cannot search for.
    """
    words = split_words(value, unit_name=unit_name, hostname=hostname)
    if not words:
        raise ExecSyntaxError("Empty executable name or zeroeth argument, ignoring")
    first = words[0]
    prefixes = ""
    while first and first[0] in "-@:+!":
        prefixes += first[0]
        first = first[1:]
    if not first:
        raise ExecSyntaxError(f"Empty path in command line, ignoring: \"{value}\"")
    argv = [first, *words[1:]]
    path = first
    if "@" in prefixes:
        if len(argv) < 2:
            raise ExecSyntaxError(f"Empty zeroeth argument for '@', ignoring: \"{value}\"")
        argv = argv[1:]
    return ExecCommand(path=path, argv=tuple(argv), ignore_errors="-" in prefixes,
                       prefixes=prefixes)


_BRACED = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BARE_WORD = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def expand_environment(argv: tuple[str, ...] | list[str],
                       environment: Mapping[str, str]) -> list[str]:
    """Substitute variables like systemd at exec time.

    ``${VAR}`` anywhere in a word becomes the value (no splitting); a word that is exactly
    ``$VAR`` becomes the value split at whitespace (nothing when unset); ``$$`` is ``$``.
    """
    out: list[str] = []
    for word in argv:
        bare = _BARE_WORD.fullmatch(word)
        if bare:
            out.extend(environment.get(bare.group(1), "").split())
            continue
        out.append(_BRACED.sub(
            lambda m: "$" if m.group(0) == "$$" else environment.get(m.group(1), ""), word))
    return out


def parse_environment(values: list[str]) -> dict[str, str]:
    """``Environment=`` assignments (quoted ``VAR=value`` words) as a dict."""
    env: dict[str, str] = {}
    for value in values:
        try:
            words = split_words(value, specifiers=False)
        except ExecSyntaxError:
            continue
        for word in words:
            name, sep, val = word.partition("=")
            if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                env[name] = val
    return env


_TIMESPAN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(usec|us|msec|ms|seconds|second|sec|s|minutes|"
                       r"minute|min|m|hours|hour|hr|h|days|day|d)?")
_UNIT_SECONDS = {"us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3, "s": 1.0, "sec": 1.0,
                 "second": 1.0, "seconds": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
                 "minutes": 60.0, "h": 3600.0, "hr": 3600.0, "hour": 3600.0,
                 "hours": 3600.0, "d": 86400.0, "day": 86400.0, "days": 86400.0}


def parse_timespan(value: str, default: float) -> float:
    """A systemd time span (``5``, ``5s``, ``100ms``, ``1min 30s``, ``infinity``) in seconds.

    Returns ``default`` for an empty or unparsable value (systemd ignores those too).
    """
    text = value.strip()
    if not text:
        return default
    if text == "infinity":
        return float("inf")
    total, pos = 0.0, 0
    while pos < len(text):
        match = _TIMESPAN.match(text, pos)
        if match is None:
            return default
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
        pos = match.end()
    return total


def exec_argv(exec_start: str) -> list[str]:
    """The argv of an ExecStart, from any of the forms hardway reads on a host.

    * ``systemctl show -p ExecStart`` output (``{ path=... ; argv[]=WORDS ; ... }``):
      the words as systemctl prints them (a word with blanks double-quoted);
    * an ``ExecStart=VALUE`` line, or a bare value (continuations already joined): split
      as systemd splits it (prefixes, quoting, escapes; specifiers kept as written).

    A value systemd would refuse (bad quoting) falls back to splitting on blanks, so a
    broken unit can still be diagnosed.
    """
    text = exec_start.strip()
    if "argv[]=" in text:
        text = text.split("argv[]=", 1)[1].split(" ; ", 1)[0]
        try:
            return split_words(text, specifiers=False)
        except ExecSyntaxError:
            return text.split()
    text = text.removeprefix("ExecStart=")
    try:
        words = split_words(text, specifiers=False)
    except ExecSyntaxError:
        return text.split()
    if words:
        first = words[0].lstrip("-@:+!")
        words = [first, *words[1:]] if first else words[1:]
    return words
