"""The lab's unit files are parsed by the core's parser (one parser for the lab, the PKI
repair and the survey): :mod:`tui.core.systemd_unit`, re-exported here."""

from __future__ import annotations

from tui.core.systemd_unit import (
    COMMENTS,
    INSTALL_KEYS,
    SECTION_KEYS,
    SERVICE_KEYS,
    UNIT_KEYS,
    WHITESPACE,
    ExecCommand,
    ExecSyntaxError,
    UnitFile,
    UnitWarning,
    ends_escaped,
    exec_argv,
    expand_environment,
    parse_environment,
    parse_timespan,
    parse_unit,
    split_exec,
    split_words,
)

__all__ = [
    "COMMENTS", "INSTALL_KEYS", "SECTION_KEYS", "SERVICE_KEYS", "UNIT_KEYS", "WHITESPACE",
    "ExecCommand", "ExecSyntaxError", "UnitFile", "UnitWarning", "ends_escaped", "exec_argv",
    "expand_environment", "parse_environment", "parse_timespan", "parse_unit", "split_exec",
    "split_words",
]
