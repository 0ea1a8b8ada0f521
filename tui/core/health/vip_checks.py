"""Through the VIP: enough requests per round to meet every backend, and the VIP rules.

A round robin (ipfw ``prob`` rules, LSNAT, HAProxy) chooses a backend per new
connection, and a kept connection sticks to one, so :func:`vip_check` opens a fresh
connection for every request: ``repeats`` requests of ``/healthz`` and as many of
``/version``, all at once.  It reports the fraction that failed: 0 is ok, all is fail,
anything between is warn (some backend behind the VIP cannot answer, the seed author's
ipfw problem).  By address it verifies the VIP against the cluster CA; by name (the API
DNS name, resolved by the :data:`~tui.core.health.dns_checks.Resolver`) it verifies the
name, the way kubectl and the kubelets do.

:func:`rules_check` compares the backends the hypervisor's VIP rules list (a
:data:`VipBackends` seam: the VIP module reads ipfw or HAProxy) with the controllers
whose API server is up now.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable, Collection

from tui.core.health.client import HttpClient
from tui.core.health.dns_checks import Resolver
from tui.core.health.http_checks import describe_error, ms
from tui.core.health.model import Outcome

__all__ = ["VipBackends", "rules_check", "vip_check"]

VipBackends = Callable[[], Awaitable[tuple[str, ...]]]
"""The backend addresses the hypervisor's VIP rules send traffic to now."""

PATHS = ("/healthz", "/version")


async def _one(client: HttpClient, address: str, port: int, path: str,
               context: ssl.SSLContext, name: str | None,
               timeout: float) -> tuple[str, bool, str, float | None]:
    where = f"{name or address}:{port}"
    try:
        async with asyncio.timeout(timeout):
            exchange = await client.request(
                address, port, path, context=context, server_name=name, fresh=True,
                host_header=f"{name}:{port}" if name else None)
    except TimeoutError:
        return path, False, f"no answer from {where} within {timeout:g} s", None
    except (OSError, ssl.SSLError, ValueError, asyncio.IncompleteReadError) as exc:
        return path, False, describe_error(exc, where), None
    answer = exchange.answer
    text = answer.body.decode("utf-8", "replace").strip()
    if answer.status != 200:
        return path, False, f"{answer.status} {text.splitlines()[0] if text else ''}", \
            exchange.latency
    if path == "/version":
        try:
            text = str(json.loads(text).get("gitVersion", "?"))
        except (ValueError, AttributeError):
            return path, False, f"not a version answer: {text[:60]!r}", exchange.latency
    return path, True, text[:60], exchange.latency


async def vip_check(client: HttpClient, vip: str, port: int, *, context: ssl.SSLContext,
                    repeats: int, name: str | None = None,
                    resolve: Resolver | None = None, request_timeout: float = 2.0) -> Outcome:
    """``repeats`` fresh requests each of /healthz and /version through the VIP.

    Args:
        vip: the VIP address (dialled when ``name`` is None).
        name: the API DNS name: resolved with ``resolve`` and verified by TLS.
        request_timeout: seconds each request gets (one that takes longer counts as
            failed; the others still count).
    """
    addresses = [vip]
    label = vip
    if name is not None:
        label = name
        if resolve is None:
            return Outcome.fail(f"{name}: no resolver to look it up")
        try:
            addresses = list(await resolve(name))
        except LookupError as exc:
            return Outcome.fail(f"{name} does not resolve: {exc.args[0] if exc.args else exc}")
    jobs = [_one(client, addresses[i % len(addresses)], port, path, context, name,
                 request_timeout) for i in range(repeats) for path in PATHS]
    results = await asyncio.gather(*jobs)
    failed = [r for r in results if not r[1]]
    latencies = [r[3] for r in results if r[1] and r[3] is not None]
    latency = sorted(latencies)[len(latencies) // 2] if latencies else None
    versions = sorted({r[2] for r in results if r[1] and r[0] == "/version"})
    lines = [f"{len(results)} requests through https://{label}:{port} "
             f"({repeats} x {' and '.join(PATHS)}, a new connection each)"]
    lines += [f"  {'ok  ' if ok else 'FAIL'} {path:<9} {text}  {ms(lat)}"
              for path, ok, text, lat in results]
    fraction = len(failed) / len(results)
    facts: dict[str, object] = {"requests": len(results), "failed": len(failed),
                                "failed_fraction": round(fraction, 3), "versions": versions}
    verbose = "\n".join(lines)
    if not failed:
        spread = f", versions {', '.join(versions)}" if len(versions) > 1 else ""
        return Outcome.ok(f"{len(results)}/{len(results)} ok, median {ms(latency)}{spread}",
                          latency, verbose, facts=facts)
    reasons = sorted({r[2] for r in failed})
    summary = (f"{len(failed)}/{len(results)} failed ({fraction:.0%}): {reasons[0]}"
               + (f" (+{len(reasons) - 1} other reasons)" if len(reasons) > 1 else ""))
    if len(failed) == len(results):
        return Outcome.fail(summary, None, verbose, facts=facts)
    return Outcome.warn(summary, latency, verbose, facts=facts)


async def rules_check(backends: VipBackends, up: Callable[[], Collection[str]],
                      controllers: Collection[str]) -> Outcome:
    """The VIP rules must list exactly the controllers whose API server is up.

    Args:
        backends: reads the rule set's backend addresses.
        up: the addresses of the controllers whose readyz probe is UP now.
        controllers: every controller address.
    """
    try:
        listed = set(await backends())
    except (OSError, LookupError, ValueError) as exc:
        return Outcome.fail(f"cannot read the VIP rules: {exc}")
    healthy = set(up())
    lines = [f"rules send to: {', '.join(sorted(listed)) or 'nobody'}",
             f"API servers up: {', '.join(sorted(healthy)) or 'none'}"]
    stale = sorted(listed - healthy)
    left_out = sorted((healthy - listed) & set(controllers))
    unknown = sorted(listed - set(controllers))
    if unknown:
        lines.append(f"not a controller: {', '.join(unknown)}")
    if stale:
        return Outcome.fail(f"the VIP still sends to {', '.join(stale)} (API server down)",
                            verbose="\n".join(lines))
    if left_out or unknown:
        what = (f"{', '.join(left_out)} up but not in the rules" if left_out
                else f"{', '.join(unknown)} is not a controller")
        return Outcome.warn(what, verbose="\n".join(lines))
    return Outcome.ok(f"rules list the {len(listed)} backends that are up",
                      verbose="\n".join(lines))
