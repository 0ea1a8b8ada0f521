"""Hostile inventories: special files, deep nesting, self-including ssh configs, names
that are commands, huge values.  Each case is generated (nothing large is stored) and run
through the real CLI entry point: no traceback, no hang, exit 2 for user errors, every
message naming the file, the key and the (cut, escaped) value.  Commands that touch
hosts (``run``) refuse every inventory lint calls wrong, before any connection.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tui.cli import main
from tui.core.inventory.gate import InventoryNotRunnable, require_runnable
from tui.core.inventory.lint import lint, shown
from tui.core.inventory.load import load_inventory

ROOT = Path(__file__).resolve().parents[2]
HANG_LIMIT = 10.0

BASE = """\
[cluster]
name = "hostile"
domain = "hostile.home.arpa"

[networks]
nodes = "127.0.99.0/24"
control_plane_services = "127.0.139.0/24"
pods = "10.200.0.0/16"
services = "10.32.0.0/24"

[api]
vip = "127.0.139.1"

[ssh]
user = "root"
port = 1

[[controllers]]
name = "controller-0"
address = "127.0.99.10"

[[controllers]]
name = "controller-1"
address = "127.0.99.11"

[[controllers]]
name = "controller-2"
address = "127.0.99.12"
"""


class Hang(Exception):
    """The command did not return within HANG_LIMIT seconds."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: object) -> None:
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    status: int
    out: str
    err: str
    seconds: float


def hardway(*args: str) -> Outcome:
    """``hardway ARGS`` in-process (the real parser and error handling), with a deadline."""
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    with deadline(HANG_LIMIT), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(args))
    return Outcome(status, out.getvalue(), err.getvalue(), time.monotonic() - start)


def write(tmp: Path, text: str) -> Path:
    path = tmp / "inventory.toml"
    path.write_text(text, encoding="utf-8")
    return path


def replace(old: str, new: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        assert old in BASE, old
        return write(tmp, BASE.replace(old, new, 1))
    return make


def append(extra: str) -> Callable[[Path], Path]:
    return lambda tmp: write(tmp, BASE + extra)


def name(value: str) -> Callable[[Path], Path]:
    return replace('name = "controller-1"', f"name = {json.dumps(value)}")


def ssh_config(text: str, *, extra_files: dict[str, str] | None = None) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        config = tmp / "ssh_config"
        config.write_text(text.replace("@DIR@", str(tmp)))
        for file_name, body in (extra_files or {}).items():
            (tmp / file_name).write_text(body.replace("@DIR@", str(tmp)))
        return write(tmp, BASE.replace("port = 1\n", f'port = 1\nconfig = "{config}"\n'))
    return make


def special(kind: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "inventory.toml"
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "socket":
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(str(path))
            sock.close()
        else:
            path.symlink_to(kind)
        return path
    return make


def raw(data: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "inventory.toml"
        path.write_bytes(data)
        return path
    return make


def var(key: str, value: str) -> Callable[[Path], Path]:
    return replace('address = "127.0.99.11"\n',
                   f'address = "127.0.99.11"\nvars = {{ {key} = {json.dumps(value)} }}\n')


HUGE = "a" * 500_000
RLO = "controller-\u202e1-rellortnoc"
HOMOGLYPH = "c\u043entroller-1"  # Cyrillic o

# (id, builder, expected: "load" = does not load (exit 2), ("error"|"warning", key, part))
CASES: list[tuple[str, Callable[[Path], Path], object]] = [
    ("fifo", special("fifo"), "load"),
    ("dev-zero-symlink", special("/dev/zero"), "load"),
    ("dev-urandom-symlink", special("/dev/urandom"), "load"),
    ("dev-null-symlink", special("/dev/null"), "load"),
    ("socket", special("socket"), "load"),
    ("directory-symlink", special("/tmp"), "load"),
    ("dangling-symlink", special("/nonexistent/inventory.toml"), "load"),
    ("two-megabytes", raw(b"# " + b"x" * (2 << 20) + b"\n"), "load"),
    ("binary", raw(bytes(range(256)) * 8), "load"),
    ("latin-1", raw(BASE.replace("hostile", "h\xf6stile").encode("latin-1")), "load"),
    ("empty", raw(b""), "load"),
    ("nested-arrays-50000", raw(b"x = " + b"[" * 50_000 + b"]" * 50_000 + b"\n"), "load"),
    ("nested-inline-tables-50000", raw(b"x = " + b"{a=" * 50_000 + b"1" + b"}" * 50_000),
     "load"),
    ("nested-arrays-900-in-vars", append("[[workers]]\nname = \"worker-0\"\naddress = "
                                         "\"127.0.99.20\"\nvars = { A = " + "[" * 900
                                         + "]" * 900 + " }\n"), "load"),
    ("unterminated-string", append('[x]\ny = "abc\n'), "load"),
    ("nul-in-name", name("contr\x00oller"), ("error", "controllers[1].name", "\\x00")),
    ("unknown-top-level", append("[xyzzy]\na = 1\n"), "load"),
    ("huge-unknown-key", append("[cluster2]\n" + "k" * 200_000 + " = 1\n"), "load"),
    ("port-huge", replace("port = 1", "port = 99999999999999999999999"), "load"),
    ("port-float", replace("port = 1", "port = 2.5"), "load"),
    ("address-ipv6", replace('address = "127.0.99.11"', 'address = "::1"'), "load"),
    ("address-cidr", replace('address = "127.0.99.11"', 'address = "127.0.99.11/24"'), "load"),
    ("address-huge", replace('address = "127.0.99.11"', f'address = "{HUGE}"'), "load"),
    ("name-is-array", replace('name = "controller-1"', "name = [1, 2]"), "load"),
    ("root-relative", replace('address = "127.0.99.11"\n', 'address = "127.0.99.11"\n'
                              'root = "jails/x"\n'), "load"),
    ("var-bad-name", var('"A-B"', "x"), "load"),
    ("inline-tsig-secret", append('[dns]\nserver = "127.0.0.1"\nzone = "z"\n'
                                  'tsig_secret = "c2VjcmV0"\n'), "load"),
    ("bom", raw(b"\xef\xbb\xbf" + BASE.encode()), "load"),
    ("duplicate-name", name("controller-0"), ("error", "controllers[1].name", "controller-0")),
    ("duplicate-address", replace('"127.0.99.11"', '"127.0.99.10"'),
     ("error", "controllers[1].address", "127.0.99.10")),
    ("address-outside-nodes", replace('"127.0.99.11"', '"127.0.98.11"'),
     ("error", "controllers[1].address", "127.0.98.11")),
    ("name-at-all", name("@all"), ("error", "controllers[1].name", "host-set syntax")),
    ("name-host-set", name("controller-[0-2]"), ("error", "controllers[1].name",
                                                 "controller-[0-2]")),
    ("name-comma", name("a,b"), ("error", "controllers[1].name", "a,b")),
    ("name-command-substitution", name("$(touch x)"), ("error", "controllers[1].name",
                                                       "shell metacharacters")),
    ("name-backticks", name("`id`"), ("error", "controllers[1].name", "`id`")),
    ("name-semicolon", name("c1;reboot"), ("error", "controllers[1].name", "c1;reboot")),
    ("name-space", name("controller 1"), ("error", "controllers[1].name", "controller 1")),
    ("name-rtl-override", name(RLO), ("error", "controllers[1].name", "\\u202e")),
    ("name-homoglyph", name(HOMOGLYPH), ("error", "controllers[1].name", "CYRILLIC")),
    ("name-escape-sequence", name("c\x1b[2Jx"), ("error", "controllers[1].name", "\\x1b")),
    ("name-uppercase", name("Controller-1"), ("error", "controllers[1].name", "Controller-1")),
    ("name-too-long", name("c" * 64), ("error", "controllers[1].name", "c" * 60)),
    ("name-huge", name(HUGE), ("error", "controllers[1].name", "(500000 characters)")),
    ("name-empty", name(""), "load"),
    ("jump-missing", replace("port = 1\n", 'port = 1\njump = "nowhere"\n'),
     ("error", "ssh.jump", "nowhere")),
    ("jump-self", replace('address = "127.0.99.11"\n', 'address = "127.0.99.11"\n'
                          'ssh = { jump = "controller-1" }\n'),
     ("error", "controllers[1].ssh.jump", "controller-1 -> controller-1")),
    ("jump-loop", replace('address = "127.0.99.11"\n', 'address = "127.0.99.11"\n'
                          'ssh = { jump = "controller-2" }\n').__call__ and (
        lambda tmp: write(tmp, BASE.replace('address = "127.0.99.11"\n',
                                            'address = "127.0.99.11"\nssh = { jump = '
                                            '"controller-2" }\n').replace(
            'address = "127.0.99.12"\n', 'address = "127.0.99.12"\nssh = { jump = '
            '"controller-1" }\n'))), ("error", "controllers[1].ssh.jump", "loops back")),
    ("ssh-config-includes-itself", ssh_config("Include @DIR@/ssh_config\nHost *\n  User x\n"),
     ("error", "ssh.config", "includes a file that is already being read")),
    ("ssh-config-include-loop", ssh_config("Include @DIR@/b.conf\n",
                                           extra_files={"b.conf": "Include @DIR@/ssh_config\n"}),
     ("error", "ssh.config", "b.conf line 1")),
    ("ssh-config-unterminated-quote", ssh_config('Host *\n  User "x\n'),
     ("error", "ssh.config", "ssh_config line 2")),
    ("ssh-config-proxycommand", ssh_config("Host *\n  ProxyCommand nc %h %p\n"),
     ("warning", "ssh.config", "ProxyCommand runs a local command")),
    ("ssh-config-localcommand", ssh_config("Host *\n  LocalCommand touch /tmp/x\n"),
     ("warning", "ssh.config", "line 2")),
    ("ssh-config-knownhostscommand", ssh_config("KnownHostsCommand=/bin/cat %f\n"),
     ("warning", "ssh.config", "KnownHostsCommand")),
    ("ssh-config-match-exec", ssh_config('Match exec "touch /tmp/x"\n  User x\n'),
     ("warning", "ssh.config", "Match exec")),
    ("ssh-config-fifo", lambda tmp: (os.mkfifo(tmp / "fifo"), write(
        tmp, BASE.replace("port = 1\n", f'port = 1\nconfig = "{tmp}/fifo"\n')))[1],
     ("error", "ssh.config", "named pipe")),
    ("ssh-config-dev-zero", lambda tmp: write(
        tmp, BASE.replace("port = 1\n", 'port = 1\nconfig = "/dev/zero"\n')),
     ("error", "ssh.config", "character device")),
    ("known-hosts-fifo", lambda tmp: (os.mkfifo(tmp / "kh"), write(
        tmp, BASE.replace("port = 1\n", f'port = 1\nknown_hosts = "{tmp}/kh"\n')))[1],
     ("error", "ssh.known_hosts", "named pipe")),
    ("identity-dev-urandom", lambda tmp: write(
        tmp, BASE.replace("port = 1\n", 'port = 1\nidentity = "/dev/urandom"\n')),
     ("error", "ssh.identity", "character device")),
    ("root-slash", replace('address = "127.0.99.11"\n', 'address = "127.0.99.11"\nroot = "/"\n'),
     ("warning", "controllers[1].root", '"/"')),
    ("root-dotdot", replace('address = "127.0.99.11"\n', 'address = "127.0.99.11"\n'
                            'root = "/tmp/../../etc"\n'),
     ("warning", "controllers[1].root", "/tmp/../../etc")),
    ("var-ld-preload", var("LD_PRELOAD", "/tmp/evil.so"),
     ("warning", "controllers[1].vars.LD_PRELOAD", "/tmp/evil.so")),
    ("var-path", var("PATH", "/tmp/bin"), ("warning", "controllers[1].vars.PATH", "/tmp/bin")),
    ("var-newline", var("NOTE", "10.200.1.0/24\nreboot"),
     ("warning", "controllers[1].vars.NOTE", "\\nreboot")),
    ("var-command-substitution", var("NOTE", "$(touch /tmp/x)"),
     ("warning", "controllers[1].vars.NOTE", "$(touch /tmp/x)")),
    ("var-backticks", var("NOTE", "`id`"), ("warning", "controllers[1].vars.NOTE", "`id`")),
    ("many-hosts", append("".join(f'[[workers]]\nname = "w-{i}"\n'
                                  f'address = "127.0.99.{i % 200 + 20}"\n'
                                  for i in range(3000))),
     ("error", "workers[200].address", "repeats")),
]


@pytest.mark.parametrize(("builder", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_hostile_inventory(tmp_path: Path, builder: Callable[[Path], Path],
                           expected: object) -> None:
    path = builder(tmp_path)
    result = hardway("inventory", "check", "--json", str(path))
    assert result.seconds < HANG_LIMIT
    assert "Traceback" not in result.out + result.err
    if expected == "load":
        assert result.status == 2, result
        message = result.err
        assert message.startswith("hardway: ") and str(path) in message, message
        assert len(message) < 2000, f"message of {len(message)} characters"
        assert message.count("\n") == 1, message
        return
    severity, key, part = expected  # type: ignore[misc]
    document = json.loads(result.out)
    assert result.status == (1 if severity == "error" else 0), result
    found = [f for f in document["findings"] if f["key"] == key and f["severity"] == severity]
    assert found, f"no {severity} for {key}: {document['findings']}"
    text = " | ".join(f["message"] for f in found)
    assert part in text, f"{part!r} not in {text!r}"
    for finding in document["findings"]:
        assert finding["key"] in finding["message"], finding
        assert len(finding["message"]) < 1500, finding["message"][:300]
        assert "\x1b" not in finding["message"] and "\u202e" not in finding["message"]
    if severity == "error":
        # every command that touches hosts refuses it, before connecting
        refused = hardway("run", "-i", str(path), "--connect-timeout", "1", "--", "true")
        assert refused.status == 2, refused
        assert "run refused" in refused.err and key in refused.err, refused.err[:500]
        assert "Traceback" not in refused.err and refused.out == ""


def test_run_refuses_special_files_with_the_same_message_as_check(tmp_path: Path) -> None:
    fifo = special("fifo")(tmp_path)
    checked = hardway("inventory", "check", str(fifo))
    ran = hardway("run", "-i", str(fifo), "--", "true")
    assert checked.status == ran.status == 2
    assert checked.err == ran.err
    assert "is a named pipe (FIFO), not a regular file" in ran.err


def test_the_real_cli_exits_2_on_dev_zero_quickly(tmp_path: Path) -> None:
    link = special("/dev/zero")(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tui.cli", "inventory", "check", str(link)],
                          env=env, capture_output=True, text=True, timeout=30, check=False)
    assert time.monotonic() - start < HANG_LIMIT
    assert done.returncode == 2
    assert done.stderr == (f"hardway: inventory {link} is a character device (a symlink to "
                           "/dev/zero), not a regular file; expected a readable inventory TOML "
                           "file of a few kilobytes, such as config/something.local.toml "
                           "(pass it with -i FILE).\n")


def test_clean_base_has_no_findings(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path, BASE))
    assert lint(inventory) == []
    assert require_runnable(inventory, "run") == []


def test_gate_lists_every_error_with_key_and_value(tmp_path: Path) -> None:
    text = BASE.replace('name = "controller-1"', 'name = "controller-0"').replace(
        '"127.0.99.12"', '"127.0.98.12"')
    inventory = load_inventory(write(tmp_path, text))
    with pytest.raises(InventoryNotRunnable) as caught:
        require_runnable(inventory, "certs push")
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert message.splitlines()[0].startswith(f"{tmp_path}/inventory.toml: certs push refused: "
                                              "the inventory has 2 errors")
    assert '  - controllers[1].name: controllers[1].name "controller-0" repeats' in message
    assert "  - controllers[2].address: controllers[2].address 127.0.98.12" in message


def test_shown_escapes_and_cuts() -> None:
    assert shown("plain") == "plain"
    assert shown("a\u202eb") == "a\\u202eb"
    assert shown("x" * 1000).endswith("... (1000 characters)")
    assert len(shown("x" * 10_000_000)) < 120
