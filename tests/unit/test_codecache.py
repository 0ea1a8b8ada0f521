"""The dataclass code cache (tui.core.codecache): same classes, compiled once."""

from __future__ import annotations

import dataclasses
import inspect
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tui.core import codecache

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache_file(tmp_path: Path) -> Iterator[Path]:
    """A cache file path in a private directory; the cache is off again afterwards."""
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    yield directory / "dataclass-code"
    codecache.disable()


def _define(label: str) -> Any:
    """A frozen dataclass with defaults, a factory and annotations (built now; its
    annotations are objects, not this module's postponed strings)."""
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(f"""
        from dataclasses import dataclass, field

        @dataclass(frozen=True)
        class Point{label}:
            '''A point.'''
            x: int
            y: float = 0.5
            tags: tuple[str, ...] = ()
            seen: list[int] = field(default_factory=list, hash=False)
        """), "<test>", "exec", dont_inherit=True), namespace)
    return namespace[f"Point{label}"]


def test_a_class_built_through_the_cache_is_the_same_class(cache_file: Path) -> None:
    plain = _define("A")
    assert codecache.enable(cache_file) is not None
    cached = _define("A")
    assert inspect.signature(cached) == inspect.signature(plain)
    # no __future__ flag leaks into the methods: their annotations stay objects
    assert cached.__init__.__annotations__ == plain.__init__.__annotations__
    assert cached.__init__.__annotations__["x"] is int
    point = cached(1, tags=("a",))
    assert repr(point) == "PointA(x=1, y=0.5, tags=('a',), seen=[])"
    assert point == cached(1, tags=("a",)) and hash(point) == hash(cached(1, tags=("a",)))
    assert dataclasses.replace(point, x=2).x == 2
    assert [f.name for f in dataclasses.fields(cached)] == ["x", "y", "tags", "seen"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 3
    assert cached.__init__.__code__.co_filename == plain.__init__.__code__.co_filename


def test_the_next_run_compiles_nothing_it_has_seen(cache_file: Path) -> None:
    cache = codecache.enable(cache_file)
    assert cache is not None
    _define("B")
    assert len(cache.added) >= 5  # __init__, __repr__, __eq__, __hash__, __setattr__...
    assert codecache.save() is True
    mode = cache_file.stat().st_mode
    assert not mode & (stat.S_IWGRP | stat.S_IWOTH)
    assert codecache.save() is False  # nothing new: not written again
    codecache.disable()

    again = codecache.enable(cache_file)
    assert again is not None and again is not cache
    assert len(again.known) == len(cache.known)
    built = _define("B")
    assert again.added == {}  # every method came from the file
    assert built(3).x == 3


@pytest.mark.parametrize("damage", ["group-writable", "directory-writable", "truncated",
                                    "other-python", "not-a-dict"])
def test_a_cache_file_that_cannot_be_trusted_is_ignored(cache_file: Path,
                                                        damage: str) -> None:
    cache = codecache.enable(cache_file)
    assert cache is not None
    _define("C")
    assert codecache.save()
    codecache.disable()
    if damage == "group-writable":
        cache_file.chmod(0o660)
    elif damage == "directory-writable":
        cache_file.parent.chmod(0o777)
    elif damage == "truncated":
        cache_file.write_bytes(cache_file.read_bytes()[:40])
    elif damage == "other-python":
        cache_file.write_bytes(b"\x00\x00\r\n" + cache_file.read_bytes()[4:])
    else:
        import marshal

        cache_file.write_bytes(codecache.MAGIC + marshal.dumps(["text", 1]))
    assert codecache.read(cache_file) == {}
    fresh = codecache.enable(cache_file)
    assert fresh is not None and fresh.known == {}
    assert _define("C")(1).x == 1  # compiled as usual


def test_a_cache_that_cannot_be_written_is_only_slower(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = codecache.enable(blocker / "hardway" / "dataclass-code")
    try:
        assert cache is not None
        _define("D")
        assert codecache.save() is False
    finally:
        codecache.disable()


def test_someone_elses_hook_is_left_alone(cache_file: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def theirs(source: Any, globals_: Any = None, locals_: Any = None) -> None:
        exec(source, globals_, locals_)

    monkeypatch.setattr(dataclasses, "exec", theirs, raising=False)
    assert codecache.enable(cache_file) is None
    assert dataclasses.exec is theirs  # type: ignore[attr-defined]


def test_the_relay_process_is_told_where_the_cache_is(
        cache_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from tui.core.fleet import relaylaunch

    seen: dict[str, Any] = {}

    async def spawn(*argv: str, **options: Any) -> Any:
        seen["argv"], seen["env"] = argv, options["env"]
        raise OSError(2, "stopped here")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spawn)
    codecache.enable(cache_file)
    with pytest.raises(relaylaunch.RelayError):
        asyncio.run(relaylaunch.launch())
    assert seen["argv"][1:3] == ("-m", "tui.core.fleet.relayentry")
    assert seen["env"][codecache.ENV] == str(cache_file)
    codecache.disable()
    with pytest.raises(relaylaunch.RelayError):
        asyncio.run(relaylaunch.launch())
    assert codecache.ENV not in seen["env"] or \
        seen["env"][codecache.ENV] == os.environ.get(codecache.ENV)


def test_hardway_writes_its_cache_once_and_then_reads_it(tmp_path: Path) -> None:
    """The console script (``tui.cli.main`` with no arguments given) uses the cache under
    ``$XDG_CACHE_HOME/hardway``: the first run writes it, the next compiles nothing new
    (the file is not written again)."""
    inventory = ROOT / "config" / "example.toml"
    if not inventory.exists():
        inventory = next((ROOT / "config").glob("*.toml"))
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"),
               XDG_STATE_HOME=str(tmp_path / "state"), PYTHONPATH=str(ROOT))
    env.pop(codecache.ENV, None)
    command = [sys.executable, "-c", "import sys; from tui.cli import main; "
               "sys.argv = ['hardway', 'inventory', 'check', sys.argv[1]]; "
               "raise SystemExit(main())", str(inventory)]
    subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)
    written = tmp_path / "cache" / "hardway" / \
        f"dataclass-code.{sys.implementation.cache_tag}"
    assert written.is_file()
    assert len(codecache.read(written)) >= 20
    before = written.stat().st_mtime_ns
    subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)
    assert written.stat().st_mtime_ns == before


def test_no_home_directory_means_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without $XDG_CACHE_HOME and with no home to be found, hardway starts uncached."""
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def nowhere() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(nowhere))
    try:
        assert codecache.enable() is None
        assert codecache.active() is None
        assert codecache.save() is False
    finally:
        codecache.disable()


def test_namedtuples_are_built_through_the_cache_too(cache_file: Path) -> None:
    """``collections.namedtuple`` compiles each class's ``__new__`` with ``eval``."""
    import collections
    from typing import NamedTuple

    cache = codecache.enable(cache_file)
    assert cache is not None
    point = collections.namedtuple("point", "x y", defaults=(0,))

    class Size(NamedTuple):
        width: int
        height: int = 1

    assert point(1) == (1, 0) and point(x=2, y=3).y == 3
    assert Size(4) == (4, 1) and Size(4)._replace(height=5).height == 5
    assert point.__new__.__code__.co_filename == "<string>"
    assert any(key.startswith(codecache.EVAL_KEY) for key in cache.added)
    with pytest.raises(TypeError):
        point()  # type: ignore[call-arg]  # x has no default
    assert codecache.save()
    codecache.disable()
    assert "eval" not in collections.__dict__

    again = codecache.enable(cache_file)
    assert again is not None
    collections.namedtuple("point", "x y", defaults=(0,))
    assert again.added == {}
