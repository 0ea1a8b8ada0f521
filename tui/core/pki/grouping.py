"""Findings that say the same thing about several hosts, folded into one.

"kubernetes.pem is missing on controller-0", "... on controller-1", "... on controller-2"
become one finding "... on controller-[0-2]" (hosts named with the host-set syntax the
broadcast bar and ``-w`` take), so a screen or a report lists each problem once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

from tui.core.hostset import fold
from tui.core.pki.diagnose import CertFinding

HOST = "\x00host\x00"
"""Stands for the host's name while findings are compared."""


@dataclass(frozen=True)
class FindingGroup:
    """One finding and every host it was found on.

    Attributes:
        finding: the first of them, with the host names folded into its text.
        hosts: the hosts, in the order found (empty for local / cluster findings).
    """

    finding: CertFinding
    hosts: tuple[str, ...]


def _shape(text: str, host: str | None) -> str:
    if not host:
        return text
    return re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-])", HOST, text)


def _folded(text: str, host: str | None, named: str) -> str:
    return _shape(text, host).replace(HOST, named)


def group_findings(findings: Sequence[CertFinding]) -> list[FindingGroup]:
    """Fold findings identical but for their host's name (first occurrence's order)."""
    groups: dict[tuple[object, ...], list[CertFinding]] = {}
    for finding in findings:
        key = (finding.severity, finding.certificate, _shape(finding.message, finding.host),
               _shape(finding.fix, finding.host), _shape(finding.after, finding.host),
               finding.actions, finding.host is None)
        groups.setdefault(key, []).append(finding)
    result = []
    for members in groups.values():
        hosts = tuple(f.host for f in members if f.host)
        first = members[0]
        if len(hosts) > 1:
            named = fold(hosts)
            first = dataclasses.replace(
                first, host=named, message=_folded(first.message, first.host, named),
                fix=_folded(first.fix, first.host, named),
                after=_folded(first.after, first.host, named))
        result.append(FindingGroup(first, hosts))
    return result
