"""hardway lab stand-in for kube-controller-manager and kube-scheduler (KTHW doc 08).

What a KTHW reader and hardway's health checks see of the real ones (1.18):

* It reads its kubeconfig (``--kubeconfig``; the scheduler's comes from ``--config``, a
  KubeSchedulerConfiguration whose ``clientConnection.kubeconfig`` names it) and exits 1
  with the real wording when a file is missing or unreadable.
* Every 2 s, like leader election renewing its lock, it dials the kubeconfig's server
  (https://127.0.0.1:6443 in KTHW) with the kubeconfig's client certificate, verifying
  the served certificate against the kubeconfig's CA *for the address it dials*.  When
  that fails it logs client-go's line (``x509: certificate is valid for ..., not
  127.0.0.1``) and its health check fails.
* ``/healthz`` on the insecure port (HTTP, controller-manager 10252, scheduler 10251;
  ``--port=0`` turns it off) and on the secure port (HTTPS with a self-signed certificate,
  10257 / 10259): ``ok``, or HTTP 500 with ``[-]leaderElection failed: reason withheld``.

Run as ``python -P kube_component.py COMPONENT [flags]``.  Standard library plus the
kube-apiserver stand-in's helpers (same directory); it must not import ``tui``.
"""

from __future__ import annotations

import asyncio
import base64
import re
import signal
import ssl
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

import kube_apiserver as common

COMPONENTS: dict[str, dict[str, Any]] = {
    "kube-controller-manager": {"port": 10252, "secure-port": 10257,
                                "lock": "kube-system/kube-controller-manager",
                                "source": "leaderelection.go:331"},
    "kube-scheduler": {"port": 10251, "secure-port": 10259,
                       "lock": "kube-system/kube-scheduler",
                       "source": "leaderelection.go:331"},
}
RENEW_SECONDS = 2.0


class Kubeconfig:
    """The parts of a kubeconfig a component uses (server, CA, client pair)."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            text = Path(common.host_path(path)).read_text(encoding="utf-8")
        except OSError as exc:
            raise common.StartupError(
                f"stat {path}: {(exc.strerror or str(exc)).lower()}") from exc
        self.server = self._value(text, "server")
        self.ca = base64.b64decode(self._value(text, "certificate-authority-data"))
        self.cert = base64.b64decode(self._value(text, "client-certificate-data"))
        self.key = base64.b64decode(self._value(text, "client-key-data"))

    def _value(self, text: str, key: str) -> str:
        match = re.search(rf"^\s*{re.escape(key)}:\s*(\S+)\s*$", text, re.MULTILINE)
        if match is None:
            raise common.StartupError(f"invalid configuration: no {key} in {self.path}")
        return match.group(1).strip("\"'")

    def context(self) -> ssl.SSLContext:
        """A client context: the kubeconfig's CA (hostname checked) and client pair."""
        context = ssl.create_default_context(cadata=self.ca.decode())
        with tempfile.TemporaryDirectory() as scratch:
            cert, key = Path(scratch) / "c.pem", Path(scratch) / "k.pem"
            cert.write_bytes(self.cert)
            key.write_bytes(self.key)
            context.load_cert_chain(str(cert), str(key))
        return context


def kubeconfig_path(component: str, flags: dict[str, str]) -> str:
    """``--kubeconfig``, or for the scheduler the one its ``--config`` file names."""
    if flags.get("kubeconfig"):
        return flags["kubeconfig"]
    config = flags.get("config", "")
    if component == "kube-scheduler" and config:
        try:
            text = Path(common.host_path(config)).read_text(encoding="utf-8")
        except OSError as exc:
            raise common.StartupError(
                f"open {config}: {(exc.strerror or str(exc)).lower()}") from exc
        match = re.search(r"^\s*kubeconfig:\s*\"?([^\"\s]+)", text, re.MULTILINE)
        if match:
            return match.group(1)
    raise common.StartupError("invalid configuration: no configuration has been provided, "
                              "try setting KUBERNETES_MASTER environment variable")


def parse(argv: list[str]) -> dict[str, str]:
    """``--name=value`` / ``--name value`` / ``--bool`` (any flag: KTHW's vary by release)."""
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("--"):
            raise common.StartupError(f"unknown command \"{arg}\"")
        name, eq, value = arg[2:].partition("=")
        if not eq and i < len(argv) and not argv[i].startswith("--") and name not in {
                "leader-elect", "use-service-account-credentials", "profiling",
                "allocate-node-cidrs", "help", "version"}:
            value = argv[i]
            i += 1
        flags[name] = value if (eq or value) else "true"
    return flags


class Lease:
    """Leader election's view of the API server: renewed every 2 s."""

    def __init__(self, component: str, kubeconfig: Kubeconfig) -> None:
        self.component = component
        self.kubeconfig = kubeconfig
        self.healthy = False
        self._last_error = ""

    async def renew(self) -> None:
        """Dial the API server as client-go would; log a failure once per new reason."""
        url = self.kubeconfig.server.rstrip("/")
        match = re.match(r"https://\[?([^\]/]+?)\]?(?::(\d+))?$", url)
        if match is None:
            self._fail(f"invalid server URL {url}")
            return
        host, port = match.group(1), int(match.group(2) or 443)
        lock = COMPONENTS[self.component]["lock"]
        target = (f"https://{host}:{port}/api/v1/namespaces/{lock.split('/')[0]}/endpoints/"
                  f"{lock.split('/')[1]}?timeout=10s")
        try:
            async with asyncio.timeout(5.0):
                _reader, writer = await asyncio.open_connection(
                    host, port, ssl=self.kubeconfig.context(), server_hostname=host)
            writer.close()
        except ssl.SSLCertVerificationError as exc:
            self._fail(f"error retrieving resource lock {lock}: Get \"{target}\": "
                       f"{_x509_reason(exc, host)}")
        except (OSError, TimeoutError) as exc:
            reason = "connection refused" if isinstance(exc, ConnectionRefusedError) \
                else (str(exc) or type(exc).__name__)
            self._fail(f"error retrieving resource lock {lock}: Get \"{target}\": dial tcp "
                       f"{host}:{port}: connect: {reason}")
        else:
            if not self.healthy:
                common.log(f"successfully acquired lease {lock}",
                           source="leaderelection.go:252")
            self.healthy, self._last_error = True, ""

    def _fail(self, message: str) -> None:
        self.healthy = False
        if message != self._last_error:
            common.log(message, level="E", source=COMPONENTS[self.component]["source"])
            self._last_error = message


def _x509_reason(exc: ssl.SSLCertVerificationError, host: str) -> str:
    text = exc.verify_message or str(exc)
    if "mismatch" in text or "match" in text:
        return f"x509: certificate is not valid for {host}"
    if "unable to get local issuer" in text or "self-signed" in text or "self signed" in text:
        return "x509: certificate signed by unknown authority"
    if "expired" in text:
        return "x509: certificate has expired or is not yet valid"
    return f"x509: {text}"


async def serve_health(lease: Lease, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
    """One HTTP exchange: GET /healthz (anything else 404)."""
    try:
        request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        path = request.split(b" ", 2)[1].decode(errors="replace").split("?")[0]
        if path == "/healthz":
            if lease.healthy:
                status, body = 200, "ok"
            else:
                status, body = 500, ("[+]ping ok\n[-]leaderElection failed: reason withheld\n"
                                     "healthz check failed\n")
        else:
            status, body = 404, "404 page not found\n"
        data = body.encode()
        writer.write(f"HTTP/1.1 {status} {common.REASONS.get(status, 'Error')}\r\n"
                     f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(data)}"
                     "\r\nConnection: close\r\n\r\n".encode() + data)
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError, TimeoutError, IndexError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def run(component: str, flags: dict[str, str]) -> int:
    """Start the lease loop and the health ports; run until SIGTERM."""
    kubeconfig = Kubeconfig(kubeconfig_path(component, flags))
    lease = Lease(component, kubeconfig)
    defaults = COMPONENTS[component]
    bind = flags.get("bind-address", "0.0.0.0")
    if bind in {"0.0.0.0", "::", ""}:
        bind = common.LAB_ADDRESS or "127.0.0.1"
    common.log(f"Version: v{common.VERSION}", source="controllermanager.go:178")
    servers = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_health(lease, reader, writer)

    insecure = int(flags.get("port", str(defaults["port"])) or 0)
    if insecure:
        servers.append(await asyncio.start_server(handler, bind, insecure))
    secure = int(flags.get("secure-port", str(defaults["secure-port"])) or 0)
    if secure:
        cert_pem, key_pem = common.generate_self_signed("localhost", ["127.0.0.1"],
                                                        ["localhost"])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as scratch:
            cert, key = Path(scratch) / "c.pem", Path(scratch) / "k.pem"
            cert.write_bytes(cert_pem)
            key.write_bytes(key_pem)
            context.load_cert_chain(str(cert), str(key))
        servers.append(await asyncio.start_server(handler, bind, secure, ssl=context))
        common.log(f"Serving securely on {bind}:{secure}", source="secure_serving.go:178")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    common.log(f"attempting to acquire leader lease  {defaults['lock']}...",
               source="leaderelection.go:242")
    while not stop.is_set():
        await lease.renew()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RENEW_SECONDS)
    for server in servers:
        server.close()
    return 0


def main(argv: list[str]) -> int:
    """``kube_component.py COMPONENT [flags]``: exit 1 with ``Error: ...`` on bad input."""
    if not argv or argv[0] not in COMPONENTS:
        sys.stderr.write(f"usage: kube_component.py {{{','.join(COMPONENTS)}}} [flags]\n")
        return 2
    component = argv[0]
    try:
        flags = parse(argv[1:])
        if "version" in flags:
            print(f"Kubernetes v{common.VERSION}")
            return 0
        return asyncio.run(run(component, flags))
    except common.StartupError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        sys.stderr.flush()
        return 1
    except OSError as exc:
        sys.stderr.write(f"Error: failed to listen: {exc.strerror or exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
