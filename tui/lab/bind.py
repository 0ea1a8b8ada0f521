"""Real BIND (``named`` from Debian's bind9) serving the lab's cluster zone.

``named`` runs unprivileged-port, in the foreground (``named -g -c ABS -p PORT``), with its
own directory for the configuration, the zone file and the update journal (``.jnl``), no
pid file and no control channel, so several can run side by side on loopback addresses::

    server = BindServer("something.local", records, key_name="hardway-key",
                        key_secret=secret, directory=Path("/tmp/lab/dns"))
    await server.start("127.0.10.2", 5353)
    ...                                   # dig, nsupdate -k, hardway dns check
    await server.stop()

The zone allows RFC 2136 updates signed with the key (``update-policy { grant KEY zonesub
ANY; }``) and zone transfers to the same key (``allow-transfer { key KEY; }``).
:func:`named_missing_reason` says why it cannot run here (so the lab can use the dnspython
stand-in of :mod:`tui.lab.dns_server` instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.message

from tui.core.dns.records import Record, absolute
from tui.core.errors import UserError
from tui.lab.zonedata import zone_text

NAMED = "named"
START_TIMEOUT = 15.0


def named_missing_reason() -> str | None:
    """Why real BIND cannot be started here (None when it can)."""
    if shutil.which(NAMED) is None and not Path("/usr/sbin/named").exists():
        return ("BIND's named is not installed (Debian package bind9; "
                "scripts/install-test-deps.sh installs it)")
    return None


def _named_path() -> str:
    return shutil.which(NAMED) or "/usr/sbin/named"


class BindServer:
    """``named`` serving one zone with a TSIG key.

    Args:
        zone: the zone name (``something.local``).
        records: its A/PTR records (SOA and NS are added: ``ns.ZONE`` at the address).
        key_name: the TSIG key allowed to update and transfer the zone.
        key_secret: its base64 secret.
        algorithm: the key's algorithm.
        directory: where named.conf, the zone file, the journal and named.log go.
        ttl: the SOA/NS TTL.
        dynamic: allow RFC 2136 updates (False: a zone kept by hand, edited in
            zone-file mode and reloaded with rndc).
        zone_file: load this zone file instead of writing one from ``records``.
        control_port: also open rndc's control channel on ``127.0.0.1:PORT`` (with
            ``rndc.conf`` in ``directory``), for ``rndc -c DIR/rndc.conf reload ZONE``.
    """

    def __init__(self, zone: str, records: Sequence[Record], *, key_name: str,
                 key_secret: str, algorithm: str = "hmac-sha256", directory: Path,
                 ttl: int = 300, dynamic: bool = True, zone_file: Path | None = None,
                 control_port: int | None = None) -> None:
        self.zone = absolute(zone)
        self.records = tuple(records)
        self.key_name = key_name
        self.key_secret = key_secret
        self.algorithm = algorithm
        self.directory = Path(directory).resolve()
        self.ttl = ttl
        self.dynamic = dynamic
        self.given_zone_file = Path(zone_file).resolve() if zone_file else None
        self.control_port = control_port
        self.address = ""
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None

    @property
    def config_path(self) -> Path:
        """named.conf."""
        return self.directory / "named.conf"

    @property
    def zone_path(self) -> Path:
        """The zone file named loads (and rewrites from its journal)."""
        return self.given_zone_file or self.directory / f"{self.zone.rstrip('.')}.zone"

    @property
    def rndc_config_path(self) -> Path:
        """rndc.conf for the control channel (when ``control_port`` is set)."""
        return self.directory / "rndc.conf"

    @property
    def log_path(self) -> Path:
        """named's stderr (``-g`` logs there)."""
        return self.directory / "named.log"

    @property
    def running(self) -> bool:
        """True while named runs."""
        return self._process is not None and self._process.returncode is None

    def config(self) -> str:
        """The named.conf text (holds the secret: written 0600)."""
        zone = self.zone.rstrip(".")
        policy = (f"update-policy {{ grant {self.key_name} zonesub ANY; }};"
                  if self.dynamic else "")
        controls = ("controls { };" if self.control_port is None else
                    f"controls {{ inet 127.0.0.1 port {self.control_port} allow "
                    f"{{ 127.0.0.1; }} keys {{ \"{self.key_name}\"; }}; }};")
        return f"""options {{
    directory "{self.directory}";
    pid-file none;
    session-keyfile "{self.directory}/session.key";
    managed-keys-directory "{self.directory}";
    listen-on port {self.port} {{ {self.address}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    notify no;
    dnssec-validation no;
}};
{controls}
key "{self.key_name}" {{
    algorithm {self.algorithm};
    secret "{self.key_secret}";
}};
zone "{zone}" {{
    type primary;
    file "{self.zone_path}";
    {policy}
    allow-transfer {{ key {self.key_name}; }};
}};
"""

    async def start(self, address: str, port: int) -> None:
        """Write the files and run named on ``address:port``; return once it answers.

        Raises:
            UserError: named is missing, or exits / does not answer (its log's tail).
        """
        reason = named_missing_reason()
        if reason:
            raise UserError(f"Cannot start the lab's DNS server: {reason}.")
        if self.running:
            raise RuntimeError("named is already running")
        self.address, self.port = address, port
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob("*.jnl"):
            stale.unlink()
        if self.given_zone_file is None:
            self.zone_path.write_text(zone_text(self.zone, self.records, address,
                                                ttl=self.ttl))
        self.config_path.write_text(self.config())
        self.config_path.chmod(0o600)
        if self.control_port is not None:
            self.rndc_config_path.write_text(
                f'key "{self.key_name}" {{ algorithm {self.algorithm}; '
                f'secret "{self.key_secret}"; }};\n'
                f'options {{ default-key "{self.key_name}"; default-server 127.0.0.1; '
                f"default-port {self.control_port}; }};\n")
            self.rndc_config_path.chmod(0o600)
        log = self.log_path.open("wb")
        try:
            self._process = await asyncio.create_subprocess_exec(
                _named_path(), "-g", "-n", "1", "-c", str(self.config_path), "-p", str(port),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        finally:
            log.close()
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        query = dns.message.make_query(self.zone, "SOA")
        while time.monotonic() < deadline:
            if self._process is not None and self._process.returncode is not None:
                break
            with contextlib.suppress(dns.exception.DNSException, OSError):
                answer = await dns.asyncquery.udp(query, self.address, port=self.port,
                                                  timeout=0.3)
                if answer.answer:
                    return
            await asyncio.sleep(0.1)
        tail = self.log_tail()
        raise UserError(f"named did not start serving {self.zone} on {self.address}:"
                        f"{self.port} within {START_TIMEOUT:g} s; its log ({self.log_path}) "
                        f"ends with:\n{tail}")

    def log_tail(self, lines: int = 12) -> str:
        """The last lines of named's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    async def stop(self) -> None:
        """Stop named (TERM, then KILL after 5 s)."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()


__all__ = ["BindServer", "named_missing_reason"]
