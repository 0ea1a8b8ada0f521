"""HTTP(S) checks of kube-apiserver, the nginx health proxy, scheduler and controller-manager.

Each function does one run and returns an :class:`~tui.core.health.model.Outcome`; they
raise for network and TLS trouble, and :func:`describe_error` words those the way the
poller shows them (a probe wrapper catches them).  Ports and schemes are Kubernetes
1.18's:

* kube-apiserver ``https://ADDR:6443/livez`` and ``/readyz?verbose``, verified against the
  cluster CA (the served certificate must list ADDR), anonymous (1.18 allows anonymous
  GET of /healthz /livez /readyz /version);
* the nginx health proxy of KTHW doc 08: ``http://ADDR:80/healthz`` with
  ``Host: kubernetes.default.svc.cluster.local`` (nginx passes it to 127.0.0.1:6443);
* kube-scheduler ``https://ADDR:10259/healthz`` and kube-controller-manager
  ``https://ADDR:10257/healthz``: their secure ports (the insecure 10251/10252 are
  deprecated), which serve a self-signed certificate made in memory unless
  ``--tls-cert-file`` is given, so the certificate is not verified; ``/healthz`` is in
  their default ``--authorization-always-allow-paths`` and needs no credentials.
"""

from __future__ import annotations

import asyncio
import ssl

from tui.core.health.client import Exchange, HttpClient
from tui.core.health.model import Outcome

__all__ = ["NGINX_HOST", "apiserver_check", "describe_error", "endpoint_check", "ms"]

NGINX_HOST = "kubernetes.default.svc.cluster.local"


def ms(seconds: float | None) -> str:
    """``3 ms`` / ``1.20 s`` for a latency."""
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def describe_error(exc: BaseException, where: str) -> str:
    """One line for a failed exchange with ``where`` (``10.10.0.10:6443``)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or exc.reason or str(exc)
        if "mismatch" in message.lower():
            return f"the certificate served on {where} does not list that name ({message})"
        return f"the certificate served on {where} does not verify against the CA ({message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {where} failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing listens on {where} (connection refused)"
    if isinstance(exc, asyncio.IncompleteReadError):
        return f"{where} closed the connection before answering"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where}"
    if isinstance(exc, OSError):
        return f"{where}: {exc.strerror or exc}"
    return f"{where}: {exc or type(exc).__name__}"


def _failing_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("[-]")]


async def apiserver_check(client: HttpClient, address: str, port: int, path: str, *,
                          context: ssl.SSLContext) -> Outcome:
    """kube-apiserver ``path`` (``/livez``, ``/readyz?verbose``): ok on HTTP 200.

    The verbose output keeps every ``[+]``/``[-]`` line; a failure names the ``[-]`` ones.
    """
    name = path.lstrip("/").split("?")[0]
    where = f"{address}:{port}"
    try:
        exchange = await client.request(address, port, path, context=context)
    except (OSError, ssl.SSLError, ValueError, asyncio.IncompleteReadError) as exc:
        return Outcome.fail(f"{name}: {describe_error(exc, where)}")
    return _judge(name, exchange, f"https://{where}{path}")


def _judge(name: str, exchange: Exchange, target: str) -> Outcome:
    answer = exchange.answer
    body = answer.body.decode("utf-8", "replace")
    verbose = f"GET {target} -> {answer.status} {answer.reason}\n{body.rstrip()}"
    checks = [line for line in body.splitlines() if line[:3] in {"[+]", "[-]"}]
    facts: dict[str, object] = {"status": answer.status, "reused": exchange.reused}
    if checks:
        facts["checks"] = checks
    if answer.status == 200:
        return Outcome.ok(f"{name} {answer.status} in {ms(exchange.latency)}",
                          exchange.latency, verbose, facts=facts)
    failing = _failing_lines(body)
    reason = "; ".join(failing) if failing else (body.strip().splitlines() or [answer.reason])[0]
    return Outcome.fail(f"{name} {answer.status}: {reason[:200]}", exchange.latency, verbose,
                        facts=facts)


async def endpoint_check(client: HttpClient, name: str, address: str, port: int, path: str, *,
                         context: ssl.SSLContext | None,
                         host_header: str | None = None) -> Outcome:
    """A plain health endpoint (nginx, scheduler, controller-manager): ok on 200.

    Args:
        context: TLS context (None: plain HTTP).
        host_header: the ``Host:`` header to send (nginx's server_name).
    """
    where = f"{address}:{port}"
    scheme = "https" if context is not None else "http"
    try:
        exchange = await client.request(address, port, path, context=context,
                                        host_header=host_header)
    except (OSError, ssl.SSLError, ValueError, asyncio.IncompleteReadError) as exc:
        return Outcome.fail(f"{name}: {describe_error(exc, where)}")
    header = f" (Host: {host_header})" if host_header else ""
    return _judge(name, exchange, f"{scheme}://{where}{path}{header}")
