"""Text and JSON for certificate work: findings, push previews, per-host progress.

Everything here writes to the text stream it is given (like :mod:`tui.core.runreport`);
colour is ANSI and only on request.  Private keys never reach these functions: file
changes carry digests, never contents of secret files.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from collections.abc import Mapping, Sequence
from typing import TextIO

from tui.core.pki.diagnose import CertFinding
from tui.core.pki.survey import HostSurvey
from tui.core.plan import FileChange, PlanEvent, StepPreview

__all__ = ["ProgressPrinter", "file_lines", "host_json", "paint", "preview_json",
           "render_findings", "render_preview", "render_summary", "wrap"]

WIDTH = 100


def paint(text: str, code: str, colour: bool) -> str:
    """``text`` in ANSI SGR ``code`` when ``colour`` is on."""
    return f"\x1b[{code}m{text}\x1b[0m" if colour else text


def wrap(text: str, indent: str, width: int = WIDTH) -> str:
    """``text`` filled to ``width`` with every line indented by ``indent``."""
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent,
                         break_on_hyphens=False, break_long_words=False)


def host_json(host: HostSurvey) -> dict[str, object]:
    """What the survey found on one host, for ``certs check --json``."""
    served = host.served
    return {
        "reachable": host.error is None, "error": host.error,
        "exec_start": host.exec_start, "cert_dir": host.cert_dir,
        "stale_files": list(host.stale_files), "key_matches": host.key_matches,
        "units": host.units,
        "served": None if served is None else {
            "fingerprint": served.fingerprint, "subject_cn": served.subject_cn,
            "issuer_cn": served.issuer_cn, "dns_names": list(served.dns_names),
            "ip_addresses": list(served.ip_addresses),
            "not_after": served.not_after.isoformat()},
        "served_error": host.served_error,
        "etcd_served": None if host.etcd_served is None else {
            "fingerprint": host.etcd_served.fingerprint,
            "subject_cn": host.etcd_served.subject_cn,
            "issuer_cn": host.etcd_served.issuer_cn,
            "not_after": host.etcd_served.not_after.isoformat()},
        "etcd_served_error": host.etcd_served_error,
        "home": host.home,
        "kubeconfigs": {name: {"path": c.where, "server": c.server, "status": c.worst,
                               "problems": [p.kind.value for p in c.problems],
                               "subject_cn": c.cert.subject_cn if c.cert else None}
                        for name, c in host.kubeconfigs.items()},
        "files": {p: {"present": f.present, "sha256": f.sha256, "error": f.error}
                  for p, f in host.files.items()},
    }


_LABELS = {"error": ("ERROR", "1;31"), "warning": ("warn", "33"), "ok": ("ok", "32")}


def render_findings(out: TextIO, groups: Mapping[str, Sequence[CertFinding]], *,
                    colour: bool = False, empty_ok: str = "") -> None:
    """Findings under a title per group (local PKI, each host, the cluster).

    A group without findings prints ``empty_ok`` as an ok line when it is given, and is
    left out otherwise.
    """
    first = True
    for title, items in groups.items():
        if not items and not empty_ok:
            continue
        out.write(("" if first else "\n") + paint(title, "1", colour) + "\n")
        first = False
        if not items:
            out.write(f"  {paint('ok   ', '32', colour)} {empty_ok}\n")
        for finding in items:
            label, code = _LABELS[finding.severity]
            head = f"  {paint(f'{label:<5}', code, colour)} "
            body = wrap(f"{finding.certificate}: {finding.message}", " " * 8)[8:]
            out.write(head + body + "\n")
            if finding.fix:
                out.write(wrap(f"fix: {finding.fix}", " " * 8) + "\n")


class ProgressPrinter:
    """One line per host per step: ``controller-0  restart kube-apiserver ... ok (...)``.

    The line starts when the step starts running (the rollout is rolling: one step at a
    time) and ends when it is done or failed; ``as_json`` prints one JSON object per
    finished step instead.
    """

    def __init__(self, out: TextIO, names: Sequence[str], *, colour: bool = False,
                 as_json: bool = False) -> None:
        self.out = out
        self.pad = max((len(n) for n in names), default=0)
        self.colour = colour
        self.as_json = as_json
        self._open: tuple[str, str] | None = None

    def __call__(self, event: PlanEvent) -> None:
        out = self.out
        if self.as_json:
            if event.state in ("skipped", "done", "failed"):
                out.write(json.dumps(dataclasses.asdict(event)) + "\n")
                out.flush()
            return
        prefix = f"{event.host:<{self.pad}}  {event.step} ... "
        key = (event.host, event.step)
        if event.state == "running":
            self._close()
            out.write(prefix)
            self._open = key
        elif event.state in ("skipped", "done", "failed"):
            if self._open != key:
                self._close()
                out.write(prefix)
            self._open = None
            word, code = {"done": ("ok", "32"), "skipped": ("skipped", "2"),
                          "failed": ("FAILED", "1;31")}[event.state]
            detail = f" ({event.detail})" if event.detail else ""
            out.write(f"{paint(word, code, self.colour)}{detail}\n")
        out.flush()

    def _close(self) -> None:
        if self._open is not None:
            self.out.write("\n")
            self._open = None


def render_summary(out: TextIO, preview: Mapping[str, Sequence[StepPreview]],
                   what: str) -> None:
    """One line per host naming the steps that would change something."""
    out.write(f"{what} {', '.join(preview)}, one host at a time:\n")
    pad = max((len(n) for n in preview), default=0)
    for host, items in preview.items():
        parts = []
        for item in items:
            if item.done is not None or item.preview.empty:
                continue
            changed = [f for f in item.preview.files if f.changed]
            if changed:
                parts.append(f"{item.step} ({len(changed)} file{'s' * (len(changed) != 1)})")
            else:
                parts.append(item.step)
        out.write(f"  {host:<{pad}}  {', '.join(parts) or 'nothing to do'}\n")


def render_preview(out: TextIO, preview: Mapping[str, Sequence[StepPreview]], *,
                   colour: bool = False) -> None:
    """Per host and step: files (size, mode, fingerprint, diff), commands and notes."""
    for index, (host, items) in enumerate(preview.items()):
        out.write(("\n" if index else "") + paint(host, "1", colour) + "\n")
        pad = max((len(f.path) for item in items for f in item.preview.files), default=0)
        for item in items:
            if item.done is not None:
                out.write(f"  {item.step}: skipped ({item.done})\n")
                continue
            out.write(f"  {item.step}\n")
            for change in item.preview.files:
                head, detail = file_lines(change)
                out.write(f"    {change.path:<{pad}}  {head}\n")
                if detail:
                    out.write(wrap(detail, " " * 8) + "\n")
                for line in (change.diff or "").splitlines():
                    code = "32" if line.startswith("+") else "31" if line.startswith("-") \
                        else "2"
                    out.write("      " + paint(line, code, colour) + "\n")
            for command in item.preview.commands:
                out.write(f"    $ {command}\n")
            for note in item.preview.notes:
                out.write(wrap(note, " " * 4) + "\n")


def file_lines(change: FileChange) -> tuple[str, str]:
    """The head (size, mode, fingerprint, status) and the detail line of a file change."""
    if change.removed:
        return "moved away", change.description
    status = ("unchanged" if not change.changed else "new" if change.old_sha256 is None
              else "changes")
    head = f"{change.size:>5} B  {change.mode:04o}  {change.fingerprint}  {status}"
    detail = "private key, contents not shown" if change.secret else change.description
    if change.changed and change.old_sha256:
        detail += f"; was SHA256:{change.old_sha256[:16]}"
    return head, detail if change.changed else ""


def preview_json(item: StepPreview) -> dict[str, object]:
    """A step preview as JSON-ready data (file modes as octal strings)."""
    return {
        "step": item.step, "skipped": item.done,
        "commands": list(item.preview.commands), "notes": list(item.preview.notes),
        "files": [{**dataclasses.asdict(f), "changed": f.changed, "mode": f"{f.mode:04o}"}
                  for f in item.preview.files],
    }
