"""Compiled dataclass methods (and namedtuples' ``__new__``), kept on disk between runs.

``@dataclass`` writes each class's ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``
(and a frozen class's ``__setattr__`` and ``__delattr__``) as source text and compiles it
with ``exec`` every time the module is imported; ``namedtuple`` does the same for each
class's ``__new__`` with ``eval``.  Before the app's first frame that is ~330 + 70
compilations (Textual's, Rich's and hardway's classes), ~50 ms of a ~0.4 s start on a
2-core machine, and the text is the same on every run.

:func:`enable` gives the ``dataclasses`` module an ``exec`` (:meth:`CodeCache.exec`), and
``collections`` an ``eval`` (:meth:`CodeCache.eval`), that look the text up in a cache
first: the code objects compiled by an earlier run,
read with ``marshal`` (as Python reads its ``.pyc`` files) from
``$XDG_CACHE_HOME/hardway/``.  What the class gets
is the same function, compiled from the same text; only the compilation is skipped.
:func:`save` writes what this run compiled, once, atomically.

The file is trusted as a ``.pyc`` is: it is read only when this user owns it and nobody
else may write to it or to its directory; a file of another Python (its magic number), a
damaged one or an unreadable one is ignored, and the methods are compiled as usual.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import marshal
import os
import stat
import sys
from pathlib import Path
from types import CodeType
from typing import Any

MAGIC = importlib.util.MAGIC_NUMBER
"""This interpreter's bytecode magic: a cache written by another Python is not read."""
MAX_ENTRIES = 4000
"""At most this many compiled texts in the file (a run adds ~330)."""
FILENAME = "<string>"
"""The file name ``exec`` gives code compiled from text (tracebacks stay the same)."""
EVAL_KEY = "\0eval\0"
"""Prefix of the keys of texts compiled for ``eval`` (others were compiled for ``exec``)."""
HOOKED = (("dataclasses", "exec"), ("collections", "eval"))
"""The modules whose builtin the cache stands in for: dataclass methods and each
namedtuple's ``__new__`` (Textual and Rich define dozens)."""

ENV = "HARDWAY_CODE_CACHE"
"""Set by the app for its shell relay process: the cache file it uses too."""

_active: CodeCache | None = None


def cache_path() -> Path:
    """``$XDG_CACHE_HOME/hardway/dataclass-code.<cache tag>`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hardway" / f"dataclass-code.{sys.implementation.cache_tag}"


class CodeCache:
    """Compiled texts by their source, from one cache file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.known = read(path)
        """What earlier runs compiled (from the file)."""
        self.added: dict[str, CodeType] = {}
        """What this run compiled (written by :meth:`save`)."""

    def compiled(self, source: str, mode: str) -> CodeType:
        """``source`` compiled in ``mode`` (``exec`` or ``eval``), from the cache when an
        earlier run compiled it.  Compiled as the builtins compile text for those
        modules: no ``__future__`` flag of this module's is inherited (the methods'
        annotations stay objects)."""
        key = source if mode == "exec" else EVAL_KEY + source
        code = self.known.get(key) or self.added.get(key)
        if code is None:
            code = compile(source, FILENAME, mode, dont_inherit=True)
            self.added[key] = code
        return code

    def exec(self, source: Any, globals_: Any = None, locals_: Any = None) -> None:
        """``exec`` for the ``dataclasses`` module: text compiled once, then cached."""
        if isinstance(source, str):
            source = self.compiled(source, "exec")
        builtins.exec(source, globals_, locals_)

    def eval(self, source: Any, globals_: Any = None, locals_: Any = None) -> Any:
        """``eval`` for the ``collections`` module (each ``namedtuple``'s ``__new__``)."""
        if isinstance(source, str):
            source = self.compiled(source, "eval")
        return builtins.eval(source, globals_, locals_)

    def save(self) -> bool:
        """Write the file if this run compiled something new; True when written.  Never
        raises: a cache that cannot be written only makes the next start slower."""
        if not self.added:
            return False
        import tempfile  # at the end of a run, not on the way to the first frame

        entries = read(self.path)
        entries.update(self.added)
        if len(entries) > MAX_ENTRIES:  # texts of classes that changed since: start again
            entries = {**self.known, **self.added}
            if len(entries) > MAX_ENTRIES:
                entries = dict(self.added)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".dataclass-code.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(MAGIC + marshal.dumps(entries))
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except (OSError, ValueError):
            return False
        self.known.update(self.added)
        self.added.clear()
        return True


def enable(path: Path | None = None) -> CodeCache | None:
    """Compile dataclass methods and namedtuples' ``__new__`` through the cache file at
    ``path`` (default :func:`cache_path`) from now on; the cache in use, or None when
    another hook holds one of the builtins (:data:`HOOKED`).  Call it before the modules
    whose classes should benefit are imported; a second call returns the cache already
    in use."""
    global _active
    if _active is not None:
        return _active
    modules = [importlib.import_module(name) for name, _builtin in HOOKED]
    for module, (_name, builtin) in zip(modules, HOOKED, strict=True):
        if builtin in module.__dict__:  # someone else's hook: leave it alone
            return None
    if path is None:
        try:
            path = cache_path()
        except (RuntimeError, KeyError, OSError):  # no home directory to speak of
            return None
    _active = CodeCache(path)
    for module, (_name, builtin) in zip(modules, HOOKED, strict=True):
        setattr(module, builtin, getattr(_active, builtin))
    return _active


def disable() -> None:
    """The ``dataclasses`` module compiles with the builtin ``exec`` again."""
    global _active
    if _active is not None:
        for name, builtin in HOOKED:
            module = importlib.import_module(name)
            if module.__dict__.get(builtin) == getattr(_active, builtin):
                delattr(module, builtin)
    _active = None


def active() -> CodeCache | None:
    """The cache in use (None: dataclasses compile as usual)."""
    return _active


def save() -> bool:
    """Write the cache in use (see :meth:`CodeCache.save`); False when none is."""
    return _active.save() if _active is not None else False


def _trusted(path: Path) -> bool:
    """``path`` (and its directory) belong to this user and only they may write to them."""
    try:
        for item in (path, path.parent):
            info = item.lstat()
            if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return False
            if item is path and not stat.S_ISREG(info.st_mode):
                return False
    except OSError:
        return False
    return True


def read(path: Path) -> dict[str, CodeType]:
    """The cache file's entries ({} when it is missing, foreign, damaged or untrusted)."""
    if not _trusted(path):
        return {}
    try:
        data = path.read_bytes()
        if not data.startswith(MAGIC):
            return {}
        entries = marshal.loads(data[len(MAGIC):])
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if not isinstance(entries, dict):
        return {}
    return {text: code for text, code in entries.items()
            if isinstance(text, str) and isinstance(code, CodeType)}
