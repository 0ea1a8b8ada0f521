"""A VIP move's plan and result as text and JSON (the CLI's views; pure).

:func:`plan_lines` shows every step with its exact preview: commands per host, file
changes (with diffs for text files, never a secret's content), the DNS UPDATE message and
notes.  :func:`result_lines` says, step by step, what was changed and what was not, and
how to roll back.  :func:`plan_json` / :func:`result_json` are the ``--json`` forms.
"""

from __future__ import annotations

from typing import Any

from tui.core.lb.move import MoveAction, MovePlan, MoveResult, StepOutcome, StepView
from tui.core.plan import FileChange, StepPreview

MARKS = {StepOutcome.DONE: "done", StepOutcome.SKIPPED: "skip", StepOutcome.FAILED: "FAIL",
         StepOutcome.NOT_RUN: "----"}


def _file_lines(change: FileChange) -> list[str]:
    if change.removed:
        head = f"remove {change.path}"
    elif change.old_sha256 is None:
        head = f"create {change.path} ({change.size} bytes, mode {change.mode:o})"
    elif not change.changed:
        head = f"keep {change.path} (unchanged)"
    else:
        head = f"write {change.path} ({change.size} bytes, mode {change.mode:o})"
    if change.description:
        head += f": {change.description}"
    lines = [head]
    if change.secret:
        lines.append(f"  (secret: content not shown; {change.fingerprint})")
    elif change.diff:
        lines += ["  " + line for line in change.diff.rstrip("\n").splitlines()]
    return lines


def _preview_lines(item: StepPreview, several: bool) -> list[str]:
    lines: list[str] = []
    pad = "      " if several else "    "
    if several:
        lines.append(f"    on {item.host}:")
    if item.done is not None:
        return [*lines, f"{pad}already done: {item.done}"]
    for command in item.preview.commands:
        first, *rest = command.splitlines() or [""]
        lines.append(f"{pad}$ {first}")
        lines += [f"{pad}  {line}" for line in rest]
    for change in item.preview.files:
        lines += [pad + line for line in _file_lines(change)]
    lines += [f"{pad}{note}" for note in item.preview.notes if note]
    return lines


def _same_everywhere(view: StepView) -> bool:
    first = view.previews[0] if view.previews else None
    return first is not None and all(p.preview == first.preview and p.done == first.done
                                     for p in view.previews)


def plan_lines(plan: MovePlan) -> list[str]:
    """The plan, step by step, with its exact preview."""
    if plan.action is MoveAction.MOVE:
        lines = [f"Move the API VIP from {plan.old_vip} to {plan.new_vip}: "
                 f"{len(plan.steps)} steps, each verified; a failure stops the plan and "
                 "`hardway vip move --rollback` undoes what was changed."]
    else:
        lines = [f"Roll back the move of the API VIP from {plan.old_vip} to {plan.new_vip}: "
                 f"{len(plan.steps)} steps, last change first."]
    lines += [f"note: {note}" for note in plan.notes]
    for index, view in enumerate(plan.steps, 1):
        lines += ["", f"{index:2d}. {view.title}  [{', '.join(view.hosts)}]"]
        if len(view.previews) > 1 and _same_everywhere(view):
            lines.append(f"    on each of {', '.join(view.hosts)}:")
            lines += _preview_lines(view.previews[0], False)
            continue
        for item in view.previews:
            lines += _preview_lines(item, len(view.previews) > 1)
    return lines


def result_lines(result: MoveResult) -> list[str]:
    """What each step did, what was changed and what was not, and what to do next."""
    lines = []
    for index, step in enumerate(result.steps, 1):
        lines.append(f"[{MARKS[step.outcome]}] {index:2d}. {step.title}")
        for host in step.hosts:
            if host.detail and step.outcome is not StepOutcome.NOT_RUN:
                lines.append(f"          {host.host}: {host.detail}")
    lines.append("")
    failed = result.failed
    if result.action is MoveAction.MOVE:
        if failed is None:
            lines.append(f"Moved: the API VIP is {result.new_vip}. Journal: {result.journal} "
                         "(`hardway vip move --rollback` moves it back).")
            return lines
        changed = ", ".join(s.name for s in result.changed) or "nothing"
        unchanged = ", ".join(s.name for s in result.unchanged) or "nothing"
        lines += [f"Stopped at `{failed.name}`. Changed: {changed}. Not changed: {unchanged}.",
                  f"Undo the changes with `hardway vip move --rollback` (journal "
                  f"{result.journal})."]
        return lines
    if failed is None:
        lines.append(f"Rolled back: the API VIP is {result.old_vip} again, as before the move.")
    else:
        lines.append(f"The rollback stopped at `{failed.name}`; run `hardway vip move "
                     f"--rollback` again once the cause is fixed (journal {result.journal}).")
    return lines


def _change_json(change: FileChange) -> dict[str, Any]:
    return {"path": change.path, "removed": change.removed, "changed": change.changed,
            "size": change.size, "mode": f"{change.mode:o}", "secret": change.secret,
            "fingerprint": change.fingerprint, "description": change.description,
            "diff": None if change.secret else change.diff}


def plan_json(plan: MovePlan) -> dict[str, Any]:
    """The plan for ``--json`` (no secret content)."""
    return {"action": plan.action.value, "old_vip": plan.old_vip, "new_vip": plan.new_vip,
            "notes": list(plan.notes),
            "steps": [{"kind": v.kind.value, "name": v.name, "title": v.title,
                       "hosts": list(v.hosts),
                       "previews": [{"host": p.host, "done": p.done,
                                     "commands": list(p.preview.commands),
                                     "files": [_change_json(f) for f in p.preview.files],
                                     "notes": [n for n in p.preview.notes if n]}
                                    for p in v.previews]}
                      for v in plan.steps]}


def result_json(result: MoveResult) -> dict[str, Any]:
    """The result for ``--json``."""
    return {"action": result.action.value, "ok": result.ok, "old_vip": result.old_vip,
            "new_vip": result.new_vip, "status": result.status.value,
            "journal": str(result.journal),
            "failed": result.failed.name if result.failed else None,
            "steps": [{"kind": s.kind.value, "name": s.name, "title": s.title,
                       "outcome": s.outcome.value, "changed": s.changed,
                       "hosts": [{"host": h.host, "outcome": h.outcome.value,
                                  "detail": h.detail} for h in s.hosts]}
                      for s in result.steps]}


__all__ = ["plan_json", "plan_lines", "result_json", "result_lines"]
