"""The core and the lab never import Textual (design rule; checked in a fresh interpreter)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import tui.core
import tui.lab

ROOT = Path(__file__).resolve().parents[2]


def _modules(package: object) -> list[str]:
    path = package.__path__  # type: ignore[attr-defined]
    prefix = package.__name__ + "."  # type: ignore[attr-defined]
    return [m.name for m in pkgutil.walk_packages(path, prefix)]


def test_core_and_lab_do_not_import_textual() -> None:
    modules = [*_modules(tui.core), *_modules(tui.lab)]
    assert len(modules) >= 5, modules  # guard against walking an empty tree
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(leaked))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "", f"textual imported by the core: {out.stdout}"


def test_the_check_itself_detects_textual() -> None:
    """The probe must be able to fail: importing the app does load textual."""
    code = "import sys, tui.app; print(int('textual' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.stdout.strip() == "1", out.stderr
