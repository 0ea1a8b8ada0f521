"""The certificate a service really serves (:6443, :2379), judged against the inventory.

:class:`ServedCertCheck` does a TLS handshake without verification and without SNI
(kube-apiserver answers the SNI ``apiserver-loopback-client`` with another certificate),
presenting the client certificate when it has one (etcd refuses a handshake without it),
and judges what came back (:mod:`tui.core.pki.inspect` reads it):

* fail: it is not issued by the cluster CA (the self-signed ``apiserver.crt`` of a unit
  that lost ``--tls-cert-file`` is named as such), a required SAN is missing (each is
  named with who dials it), or it has expired;
* warn: fewer than ``warn_days`` (30) days left;
* ok otherwise.

Certificates change rarely, so the handshake is made at most every ``refresh`` seconds
(and at once after a failure); in between each round judges the kept certificate again
(days left move on).  The verbose output lists subject, issuer, validity, SANs and every
required SAN with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import time
from collections.abc import Callable, Sequence

from cryptography import x509

from tui.core.fleet.dial import Dialer
from tui.core.health.http_checks import describe_error
from tui.core.health.model import Outcome
from tui.core.inventory.model import San
from tui.core.pki.inspect import CertInfo, certificate_info, chains_to

__all__ = ["ServedCertCheck", "judge_certificate"]

WARN_DAYS = 30.0


async def served_certificate(dialer: Dialer, address: str, port: int,
                             context: ssl.SSLContext) -> CertInfo:
    """The certificate presented on ``address:port`` (reached through ``dialer``).

    Raises:
        OSError, ssl.SSLError, ValueError: no handshake or no certificate.
    """
    host, real_port = await dialer.endpoint(address, port)
    _reader, writer = await asyncio.open_connection(host, real_port, ssl=context,
                                                    server_hostname="")
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 0.5)
    if not der:
        raise ValueError(f"{address}:{port} presented no certificate")
    return certificate_info(x509.load_der_x509_certificate(der), f"served on {address}:{port}")


def judge_certificate(info: CertInfo, ca_cert: x509.Certificate | None,
                      required: Sequence[San], *, warn_days: float = WARN_DAYS,
                      now: dt.datetime | None = None, issued_by_ca: bool | None = None
                      ) -> Outcome:
    """Judge a served certificate: issuer, required SANs, days left.

    Args:
        issued_by_ca: the result of the signature check when already known (it is the
            costly part; the caller may keep it per certificate).
    """
    days = info.days_left(now)
    present = {("ip", ip) for ip in info.ip_addresses} | {("dns", n.lower())
                                                         for n in info.dns_names}
    missing = [s for s in required if (s.kind, s.value.lower()) not in present]
    lines = [f"{info.source}", f"subject: {info.subject}", f"issuer:  {info.issuer}",
             f"valid:   {info.not_before:%Y-%m-%d} .. {info.not_after:%Y-%m-%d} "
             f"({days:.0f} days left)",
             f"SANs:    {', '.join([*info.dns_names, *info.ip_addresses]) or 'none'}",
             f"sha256:  {info.fingerprint}", "required SANs:"]
    for san in required:
        mark = "missing" if san in missing else "ok     "
        lines.append(f"  {mark} {san.kind.upper():<3} {san.value}: {san.reason}")
    verbose = "\n".join(lines)
    facts: dict[str, object] = {"days_left": round(days, 1), "subject": info.subject_cn,
                                "issuer": info.issuer_cn, "fingerprint": info.fingerprint,
                                "missing_sans": [s.value for s in missing]}
    if issued_by_ca is None:
        issued_by_ca = ca_cert is None or chains_to(info, ca_cert)
    if not issued_by_ca:
        if info.self_signed or "-ca@" in info.issuer_cn:
            why = (f"not issued by the cluster CA: issuer {info.issuer_cn!r} (the self-signed "
                   "certificate kube-apiserver makes when its unit lost --tls-cert-file?)")
        else:
            why = f"not issued by the cluster CA: issuer {info.issuer_cn!r}"
        return Outcome.fail(why, verbose=verbose, facts=facts)
    if days <= 0:
        return Outcome.fail(f"expired on {info.not_after:%Y-%m-%d}", verbose=verbose, facts=facts)
    if missing:
        names = ", ".join(s.value for s in missing)
        return Outcome.fail(f"missing SAN{'s' if len(missing) > 1 else ''} {names} "
                            f"({missing[0].reason})", verbose=verbose, facts=facts)
    if days < warn_days:
        return Outcome.warn(f"expires in {days:.0f} days ({info.not_after:%Y-%m-%d})",
                            verbose=verbose, facts=facts)
    issuer = "the cluster CA" if ca_cert is not None else f"issuer {info.issuer_cn!r}"
    return Outcome.ok(f"{issuer}, {len(required)} SANs present, {days:.0f} days left",
                      verbose=verbose, facts=facts)


class ServedCertCheck:
    """The check of one served certificate, with its kept copy.

    Args:
        dialer: where to connect.
        address, port: the service.
        context: an unverified TLS context (with the client pair for etcd).
        ca_cert: the cluster CA (None: the issuer is not judged).
        required: the SANs the certificate must carry.
        refresh: seconds a fetched certificate is judged again without a new handshake.
        warn_days: fewer days left than this is a warning.
    """

    def __init__(self, dialer: Dialer, address: str, port: int, context: ssl.SSLContext, *,
                 ca_cert: x509.Certificate | None, required: Sequence[San],
                 refresh: float = 30.0, warn_days: float = WARN_DAYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.dialer, self.address, self.port, self.context = dialer, address, port, context
        self.ca_cert, self.required = ca_cert, tuple(required)
        self.refresh, self.warn_days, self._clock = refresh, warn_days, clock
        self._kept: tuple[float, CertInfo, float, bool] | None = None
        self._judged: tuple[tuple[str, int], Outcome] | None = None

    async def __call__(self) -> Outcome:
        """One run (a handshake only when the kept certificate is too old)."""
        now = self._clock()
        if self._kept is None or now - self._kept[0] >= self.refresh:
            started = time.monotonic()
            try:
                info = await served_certificate(self.dialer, self.address, self.port,
                                                self.context)
            except (OSError, ssl.SSLError, ValueError) as exc:
                self._kept = None
                return Outcome.fail(describe_error(exc, f"{self.address}:{self.port}"))
            latency = time.monotonic() - started
            issued = self.ca_cert is None or chains_to(info, self.ca_cert)
            self._kept = (now, info, latency, issued)
        _fetched, info, latency, issued = self._kept
        day = int(info.days_left())
        if self._judged is not None and self._judged[0] == (info.fingerprint, day):
            return self._judged[1]  # the same certificate on the same day: the same verdict
        outcome = judge_certificate(info, self.ca_cert, self.required,
                                    warn_days=self.warn_days, issued_by_ca=issued)
        if outcome.status.passed:
            outcome = Outcome(outcome.status, outcome.detail, latency, outcome.verbose,
                              facts=outcome.facts)
            self._judged = ((info.fingerprint, day), outcome)
            return outcome
        self._kept = self._judged = None  # fetch again next time: it may have been fixed
        return outcome
