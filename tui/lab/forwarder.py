"""The lab hypervisor's data path: a user-space forwarder that obeys the ipfw rules.

It listens on the VIP's address and port(s) and sends every *new* connection where the
rules in the lab's ipfw state file say, as the kernel would for the connection's first
packet:

- rules are evaluated in order (number, then insertion), first match wins;
- rules in disabled sets are skipped; the default rule 65535 denies;
- ``prob P`` is a random test made for each new connection;
- ``count`` rules match and evaluation goes on;
- ``fwd IP[,PORT]`` connects to that backend (the VIP's port when none is given);
- ``keep-state`` pins the flow: the proxied connection stays with the backend it was
  given for its whole life, whatever the rules become (dynamic states outlive a swap);
- ``deny`` (and ``allow`` to the VIP itself, where nothing listens) fail the connection.

Two differences from the kernel, both inherent to a user-space proxy: a rule without
``keep-state`` still pins its connection (one TCP connection cannot be split between
backends packet by packet), and a failed connection is accepted first and then reset,
so the client sees "connection reset" where real ipfw gives "connection refused".

A backend that refuses fails the client's connection as a ``fwd`` to a dead controller
does: the client's socket is reset (the forwarder already accepted it; the kernel would
have passed the SYN and the controller answered RST).  With one of three controllers
down about a third of the new connections fail, which is the seed's problem.

The state file is re-read when its inode or mtime changes (one ``stat`` per accept), so
``ipfw set swap`` reaches the very next connection.  Run it with
``python -m tui.lab.forwarder --state FILE --listen VIP:6443 [--listen ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import random
import signal
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tui.core.lb.rules import Action, IpfwRule
from tui.lab.ipfw import IpfwState, load_state

log = logging.getLogger("hardway.lab.forwarder")

PIPE_CHUNK = 64 * 1024


@dataclass
class ForwarderStats:
    """What the forwarder did since it started.

    Attributes:
        accepted: new connections accepted on the VIP.
        forwarded: connections handed to a backend, per ``address:port``.
        refused: connections failed because the chosen backend did not answer.
        denied: connections no rule forwarded (deny, allow, default rule).
        reloads: times the rule state was re-read.
    """

    accepted: int = 0
    forwarded: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    denied: int = 0
    reloads: int = 0


@dataclass(frozen=True)
class Decision:
    """Where one new connection goes: ``backend`` None means it fails (``rule`` says why)."""

    backend: tuple[str, int] | None
    rule: IpfwRule


def _address_matches(spec: str, address: str, state: IpfwState) -> bool:
    if spec in ("any", "me"):
        return True
    if spec.startswith("table(") and spec.endswith(")"):
        table = state.tables.get(spec[6:-1])
        return table is not None and table.contains(address)
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return False


def decide(state: IpfwState, src: str, dst: str, dst_port: int,
           rng: random.Random) -> Decision:
    """The rule a new TCP connection ``src -> dst:dst_port`` matches, and its backend."""
    for rule in state.ordered():
        if not state.enabled(rule) or rule.action is Action.OTHER:
            continue
        if rule.prob_fixed is not None and rng.random() >= (rule.prob or 0.0):
            continue  # prob is tested first, before anything else of the rule
        if rule.proto not in ("tcp", "ip"):
            continue
        if not _address_matches(rule.src, src, state):
            continue
        if not _address_matches(rule.dst, dst, state):
            continue
        if rule.dst_port is not None and rule.dst_port != dst_port:
            continue
        if rule.action is Action.COUNT:
            continue
        if rule.action is Action.FWD and rule.fwd_address is not None:
            return Decision((rule.fwd_address, rule.fwd_port or dst_port), rule)
        return Decision(None, rule)
    raise AssertionError("the default rule always matches")  # pragma: no cover


class Forwarder:
    """Listen on the VIP and forward new connections by the ipfw rules in ``state_path``.

    Args:
        state_path: the lab ipfw state file of this hypervisor.
        listen: ``(address, port)`` pairs to listen on (the VIP and its ports).
        connect_timeout: seconds to wait for a backend before failing the connection.
        rng: the random source for ``prob`` (seed it for reproducible runs).
    """

    def __init__(self, state_path: Path, listen: Sequence[tuple[str, int]], *,
                 connect_timeout: float = 3.0, rng: random.Random | None = None) -> None:
        self.state_path = state_path
        self.listen = list(listen)
        self.connect_timeout = connect_timeout
        self.rng = rng or random.Random()
        self.stats = ForwarderStats()
        self._state = IpfwState()
        self._stamp: tuple[int, int, int] | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def current_state(self) -> IpfwState:
        """The rules, re-read when the file was replaced or touched since the last look."""
        try:
            st = os.stat(self.state_path)
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            try:
                self._state = load_state(self.state_path)
            except (OSError, ValueError) as exc:  # keep the last good rules
                log.warning("cannot read %s: %s", self.state_path, exc)
            else:
                self._stamp = stamp
                self.stats.reloads += 1
        return self._state

    async def start(self) -> None:
        """Bind every listen address (raises OSError when one cannot be bound)."""
        for address, port in self.listen:
            server = await asyncio.start_server(self._accept, address, port,
                                                reuse_address=True, backlog=512)
            self._servers.append(server)

    @property
    def bound(self) -> list[tuple[str, int]]:
        """The addresses actually bound (port 0 resolved)."""
        out = []
        for server in self._servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                out.append((host, port))
        return out

    async def close(self) -> None:
        """Stop listening and end every proxied connection."""
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._servers.clear()

    async def __aenter__(self) -> Forwarder:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        src = writer.get_extra_info("peername")[0]
        dst, dst_port = writer.get_extra_info("sockname")[:2]
        decision = decide(self.current_state(), src, dst, dst_port, self.rng)
        if decision.backend is None:
            self.stats.denied += 1
            _reset(writer)
            return
        host, port = decision.backend
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), self.connect_timeout)
        except (TimeoutError, OSError):
            self.stats.refused += 1
            _reset(writer)
            return
        key = f"{host}:{port}"
        self.stats.forwarded[key] = self.stats.forwarded.get(key, 0) + 1
        await _splice(reader, writer, up_reader, up_writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a refused forwarded SYN ends for the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(PIPE_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()


async def _splice(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                  up_r: asyncio.StreamReader, up_w: asyncio.StreamWriter) -> None:
    try:
        await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))
    finally:
        for w in (client_w, up_w):
            w.close()
            with contextlib.suppress(ConnectionError, OSError):
                await w.wait_closed()


def _listen_arg(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--listen wants ADDRESS:PORT, not {text!r}")
    return host, int(port)


async def _serve(args: argparse.Namespace) -> None:
    forwarder = Forwarder(Path(args.state), args.listen)
    await forwarder.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("forwarding %s by the rules in %s", forwarder.bound, args.state)
    await stop.wait()
    await forwarder.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tui.lab.forwarder --state FILE --listen VIP:PORT ...``."""
    parser = argparse.ArgumentParser(prog="forwarder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", required=True, help="the lab ipfw state file")
    parser.add_argument("--listen", type=_listen_arg, action="append", required=True,
                        metavar="ADDRESS:PORT", help="an address and port to serve")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="forwarder: %(message)s")
    try:
        asyncio.run(_serve(args))
    except OSError as exc:
        print(f"forwarder: cannot listen: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
