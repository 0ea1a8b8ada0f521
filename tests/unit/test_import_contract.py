"""The import contract (run by ``make lint``): views -> commands -> workbench -> core.

Every ``import`` of every module under ``tui/`` and ``screens/`` is read from its source
(module level and inside functions alike: a lazy import is still a dependency), each
module is put in a layer, and a layer may import only the layers the contract allows:

=========  ===============================================  ===========================
layer      modules                                          may import
=========  ===============================================  ===========================
views      screens, tui.app, tui.palette, tui.boundary,     commands, workbench, core,
           tui.widgets, tui.gc_policy, tui.theme            textual
commands   tui.cli, tui.commands                            workbench, core, lab
workbench  tui.core.workbench                               core
core       the rest of tui.core                             core
lab        tui.lab                                          core
=========  ===============================================  ===========================

Exceptions, each for a reason:

* ``tui.commands.app`` launches the app (``hardway``, ``hardway demo``): it may import
  ``tui.app``.
* a core engine may name the workbench under ``if TYPE_CHECKING:`` for its factory's
  type (no run-time dependency; see ``tui.core.workbench.ENGINES``).

Textual (and ``textual.*``) is a views-only dependency.  (The import-hygiene test also
proves that importing the core and the lab never loads Textual.)
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

ALLOWED: dict[str, set[str]] = {
    "views": {"views", "commands", "workbench", "core", "textual"},
    "commands": {"commands", "workbench", "core", "lab"},
    "workbench": {"workbench", "core"},
    "core": {"core"},
    "lab": {"lab", "core"},
}
EXCEPTIONS = {("tui.commands.app", "tui.app")}
VIEW_MODULES = ("screens", "tui.app", "tui.palette", "tui.boundary", "tui.widgets",
                "tui.gc_policy", "tui.theme")


def layer(module: str) -> str | None:
    """The layer of a first-party module (None for third-party and the stdlib)."""
    if module == "textual" or module.startswith("textual."):
        return "textual"
    if any(module == v or module.startswith(v + ".") for v in VIEW_MODULES):
        return "views"
    if module in ("tui.cli",) or module.startswith("tui.commands"):
        return "commands"
    if module == "tui.core.workbench":
        return "workbench"
    if module == "tui.core" or module.startswith("tui.core."):
        return "core"
    if module == "tui.lab" or module.startswith("tui.lab."):
        return "lab"
    if module == "tui":
        return "core"  # the package's __init__ (the version) is a leaf
    return None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of import nodes inside ``if TYPE_CHECKING:`` blocks."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                for sub in ast.walk(inner):
                    found.add(id(sub))
    return found


def imports(path: Path) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, under TYPE_CHECKING) for every import in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    typing_only = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in typing_only
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, node.lineno, id(node) in typing_only


def sources() -> list[Path]:
    """Every module of the product."""
    found = sorted((ROOT / "tui").rglob("*.py")) + sorted((ROOT / "screens").rglob("*.py"))
    return [p for p in found if "__pycache__" not in p.parts]


def violations() -> list[str]:
    """Every import the contract forbids, as ``path:line: a (layer) -> b (layer)``."""
    found: list[str] = []
    for path in sources():
        module = _module_name(path)
        own = layer(module)
        assert own is not None, f"{module} is in no layer: add it to the contract"
        for target, line, typing_only in imports(path):
            theirs = layer(target)
            if theirs is None or theirs in ALLOWED[own]:
                continue
            if (module, target) in EXCEPTIONS:
                continue
            if typing_only and own == "core" and theirs == "workbench":
                continue
            found.append(f"{path.relative_to(ROOT)}:{line}: {module} ({own}) imports "
                         f"{target} ({theirs})")
    return found


def test_every_import_follows_the_contract() -> None:
    assert len(sources()) > 50  # the walk found the product
    assert violations() == []


def test_the_contract_can_fail(tmp_path: Path, monkeypatch: object) -> None:
    """A core module importing the lab, a view, or Textual is caught."""
    code = ("from tui.lab.lab import Lab\nimport textual.app\n"
            "def f():\n    from screens.console import ConsoleScreen\n")
    probe = ROOT / "tui" / "core" / "_contract_probe.py"
    probe.write_text(code)
    try:
        found = [v for v in violations() if "_contract_probe" in v]
    finally:
        probe.unlink()
    assert [v.split(": ", 1)[1] for v in found] == [
        "tui.core._contract_probe (core) imports tui.lab.lab (lab)",
        "tui.core._contract_probe (core) imports textual.app (textual)",
        "tui.core._contract_probe (core) imports screens.console (views)",
    ]


def test_layers() -> None:
    assert layer("tui.core.workbench") == "workbench"
    assert layer("tui.core.pki.usecase") == "core"
    assert layer("screens.certs") == "views"
    assert layer("tui.commands.certs") == "commands"
    assert layer("asyncssh") is None
