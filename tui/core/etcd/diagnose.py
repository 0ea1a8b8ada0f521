"""What etcd's journal means, in plain words, with the fix.

:func:`diagnose_journal` reads the lines of ``journalctl -u etcd`` of one controller
(etcd 3.4's capnslog text or 3.5's zap JSON, with or without journalctl's prefix) and
returns :class:`Diagnosis` values, most important first, one per problem and member.
:func:`diagnose_client_error` does the same for a refused HTTPS request.

The patterns are etcd's own messages, captured from real etcd 3.4 and 3.5 in
``tests/data/etcd-logs`` (see ``tests/support/capture_etcd_logs.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from tui.core.inventory.model import Inventory


class Problem(StrEnum):
    """The failure modes of KTHW doc 07 that the diagnosis recognises."""

    PEER_CERT_SAN = "peer-cert-san"
    NAME_MISMATCH = "name-mismatch"
    URL_MISMATCH = "url-mismatch"
    FOREIGN_DATA_DIR = "foreign-data-dir"
    NEW_STATE_REJOIN = "new-state-rejoin"
    PORT_IN_USE = "port-in-use"
    CLIENT_CERT_REFUSED = "client-cert-refused"
    NO_QUORUM = "no-quorum"
    CLOCK_SKEW = "clock-skew"


ORDER = list(Problem)


@dataclass(frozen=True)
class Diagnosis:
    """One problem found.

    Attributes:
        problem: which one.
        host: the member it concerns (may differ from where the line was logged).
        summary: what is wrong, in plain words.
        fix: what to do.
        evidence: the log line (message and error) that shows it.
        seen_on: the controller whose journal held the line.
    """

    problem: Problem
    host: str
    summary: str
    fix: str
    evidence: str
    seen_on: str


def _text(line: str) -> str:
    """The message of a journal line: zap JSON flattened to ``msg: error ...``."""
    start = line.find("{\"level\"")
    if start >= 0:
        try:
            data = json.loads(line[start:])
        except ValueError:
            return line
        if isinstance(data, dict):
            extra = " ".join(f"{k}={v}" for k, v in data.items()
                             if k not in {"level", "ts", "caller", "msg", "error"})
            return f"{data.get('msg', '')}: {data.get('error', '')} {extra}".strip()
    return line


def _name_of(inventory: Inventory | None, address: str) -> str:
    if inventory is not None:
        for host in inventory.controllers:
            if str(host.address) == address:
                return host.name
    return address


_VALID_FOR = re.compile(r"x509: certificate is valid for (?P<valid>[^\"]+?), not "
                        r"(?P<ip>[0-9a-fA-F.:]+)")
_LOCAL_NAME = re.compile(r"couldn't find local name \\?\"(?P<name>[^\"\\]+)\\?\" in the "
                         r"initial cluster configuration")
_URL = re.compile(r"--initial-cluster has (?P<name>[^=\s]+)=(?P<want>\S+) but missing from "
                  r"--initial-advertise-peer-urls=(?P<got>\S+)")
_BOOTSTRAPPED = re.compile(r"member (?P<id>[0-9a-f]+) has already been bootstrapped")
_REMOVED = re.compile(r"the member has been permanently removed from the cluster")
_MISMATCH = re.compile(r"cluster ID mismatch")
_LOCAL_CID = re.compile(r"(?:local=|local-member-cluster-id=)(?P<cid>[0-9a-f]+)")
_REMOTE_CID = re.compile(r"(?:peer\[[0-9a-f]+\]=|remote-peer-cluster-id=)(?P<cid>[0-9a-f]+)")
_IN_USE = re.compile(r"listen tcp (?P<addr>\S+?):(?P<port>\d+): bind: address already in use")
_CLIENT_REFUSED = re.compile(r"client didn't provide a certificate|failed to verify client "
                             r"certificate|remote error: tls: bad certificate")
_REMOTE = re.compile(r"(?:rejected connection from \"|remote-addr=)(?P<addr>[0-9.:\[\]a-f]+)")
_QUORUM = re.compile(r"publish error: etcdserver: request timed out|failed to publish local "
                     r"member to cluster through raft")
_PEER_DOWN = re.compile(r"dial tcp (?P<ip>[0-9.]+):2380: connect: connection refused")
_SKEW = re.compile(r"clock difference against peer (?P<peer>[0-9a-f]+) is too high "
                   r"\[(?P<drift>[^ >]+)|prober found high clock drift.*?remote-peer-id="
                   r"(?P<peer2>[0-9a-f]+).*?clock-drift=(?P<drift2>\S+)")


_STARTING = re.compile(r"\bsystemd\[1\]: Starting \S.*\.\.\.\s*$")
"""systemd's own line as it starts a unit ("Starting etcd...")."""
_STARTED = re.compile(r"\bsystemd\[1\]: Started \S.*\.\s*$")
"""systemd's line once the start is done (the only one for a unit it does not report as
starting beforehand)."""
_SYSTEMD = re.compile(r"\bsystemd\[1\]: ")
"""A line of systemd's own (not etcd's)."""


def latest_run(lines: Iterable[str]) -> list[str]:
    """The lines of the newest start that etcd logged anything in, and those after it.

    A journal tail holds earlier starts too: a failure fixed since (a port freed, a flag
    corrected) must not be diagnosed beside the current one.  A start that has printed
    nothing of etcd's yet (systemd restarting it a moment ago) does not count: the
    failure it is about to repeat is the one before.  Without systemd's start lines, all
    of ``lines``."""
    kept = list(lines)
    starts: list[int] = []
    starting = False
    for index, line in enumerate(kept):
        if _STARTING.search(line):
            starts.append(index)
            starting = True
        elif _STARTED.search(line):
            if not starting:  # a start systemd did not announce: it begins here
                starts.append(index)
            starting = False
    if not starts:
        return kept
    ends = [*starts[1:], len(kept)]
    for begin, end in reversed(list(zip(starts, ends, strict=True))):
        if any(not _SYSTEMD.search(line) for line in kept[begin + 1:end]):
            return kept[begin:]
    return kept


def diagnose_journal(host: str, lines: Iterable[str],
                     inventory: Inventory | None = None) -> list[Diagnosis]:
    """Diagnose the journal ``lines`` of controller ``host``: the newest start etcd logged
    in (:func:`latest_run`)."""
    lines = latest_run(lines)
    found: dict[tuple[Problem, str], Diagnosis] = {}
    down: dict[str, None] = {}
    quorum_line = ""
    bad_cert_line = ""

    def add(problem: Problem, concerns: str, summary: str, fix: str, evidence: str) -> None:
        # the newest line wins: after several failed starts the journal holds the same
        # failure many times, and the evidence shown should be the latest one
        found[(problem, concerns)] = Diagnosis(problem, concerns, summary, fix,
                                               evidence.strip()[:400], host)

    for raw in lines:
        text = _text(raw)
        if m := _VALID_FOR.search(text):
            target = _name_of(inventory, m["ip"])
            add(Problem.PEER_CERT_SAN, target,
                f"the certificate {target} serves (kubernetes.pem) does not list its address "
                f"{m['ip']} (it is valid for {m['valid']}), so its peers refuse it",
                f"reissue kubernetes.pem with {m['ip']} among its IP SANs (`hardway certs "
                f"issue kubernetes --force`), push it (`hardway certs push`) and restart etcd",
                text)
        elif m := _LOCAL_NAME.search(text):
            add(Problem.NAME_MISMATCH, host,
                f"{host} runs etcd with --name {m['name']}, a name --initial-cluster does "
                "not list",
                f"use --name {host} (the inventory's name, which --initial-cluster lists) in "
                "etcd.service: `hardway etcd bootstrap` writes it", text)
        elif m := _URL.search(text):
            add(Problem.URL_MISMATCH, m["name"],
                f"{m['name']} advertises peer URL {m['got']} but --initial-cluster says "
                f"{m['name']}={m['want']}",
                f"make --initial-advertise-peer-urls and --listen-peer-urls {m['want']} (the "
                "member's address from the inventory), or fix --initial-cluster; `hardway "
                "etcd bootstrap` writes both from the inventory", text)
        elif m := _BOOTSTRAPPED.search(text):
            add(Problem.NEW_STATE_REJOIN, host,
                f"{host} was started with --initial-cluster-state new and an empty data "
                f"directory, but the cluster already exists and has it as member {m['id']}",
                f"replace the member: `hardway etcd replace {host}` (member remove, member "
                "add, --initial-cluster-state existing, start); never `new` on a rejoining "
                "member", text)
        elif _REMOVED.search(text):
            add(Problem.NEW_STATE_REJOIN, host,
                f"{host} started as a member the cluster has removed: after a replace, "
                "--initial-cluster-state new with an empty data directory recreates the old "
                "member ID (or its data directory predates the replace)",
                f"replace the member again: `hardway etcd replace {host}` (its unit then keeps "
                "--initial-cluster-state existing)", text)
        elif _MISMATCH.search(text):
            local = _LOCAL_CID.search(text)
            remote = _REMOTE_CID.search(text)
            ids = (f" (local {local['cid']}, peer {remote['cid']})" if local and remote
                   else "")
            add(Problem.FOREIGN_DATA_DIR, host,
                f"the members disagree on the cluster ID{ids}: a data directory belongs to "
                "another cluster (an earlier try, or another --initial-cluster-token)",
                "on the member whose cluster ID differs from the others' (`hardway etcd "
                "status`), stop etcd, move its data directory aside and start it again, or "
                "`hardway etcd replace NAME`", text)
        elif m := _IN_USE.search(text):
            add(Problem.PORT_IN_USE, host,
                f"etcd on {host} cannot listen on {m['addr']}:{m['port']}: something else "
                "already holds the port",
                f"find it with `ss -ltnp 'sport = :{m['port']}'` on {host} (often an etcd "
                "started by hand), stop it, then `systemctl start etcd`", text)
        elif _CLIENT_REFUSED.search(text):
            remote = _REMOTE.search(text)
            who = remote["addr"].rsplit(":", 1)[0] if remote else "a client"
            if "remote error: tls: bad certificate" in text:
                bad_cert_line = text
                continue
            add(Problem.CLIENT_CERT_REFUSED, host,
                f"etcd on {host} refused a client from {who}: it sent no certificate or one "
                "not signed by the cluster CA (etcd runs with --client-cert-auth)",
                "give the client ca.pem and a certificate of the cluster CA (etcdctl "
                "--cacert/--cert/--key, kube-apiserver --etcd-cafile/--etcd-certfile/"
                "--etcd-keyfile: /etc/etcd/kubernetes.pem works)", text)
        elif m := _SKEW.search(text):
            drift = m["drift"] or m["drift2"]
            add(Problem.CLOCK_SKEW, host,
                f"{host}'s clock differs from peer {m['peer'] or m['peer2']}'s by {drift} "
                "(etcd warns above 1 s; leases and elections misbehave)",
                "synchronise the clocks of every controller (chrony or ntpd) and check "
                "`timedatectl` on each", text)
        else:
            if m := _PEER_DOWN.search(text):
                down[m["ip"]] = None
            if _QUORUM.search(text):
                quorum_line = text
    if quorum_line:
        peers = ", ".join(_name_of(inventory, ip) for ip in down) or "its peers"
        add(Problem.NO_QUORUM, host,
            f"{host} is waiting for quorum: it cannot reach {peers} on port 2380, and a "
            "lone member never becomes healthy",
            "start etcd on every controller at once (`hardway etcd bootstrap` does), and "
            "check that each peer's port 2380 is reachable", quorum_line)
    if bad_cert_line and not any(p == Problem.PEER_CERT_SAN for p, _h in found):
        add(Problem.PEER_CERT_SAN, host,
            f"peers refuse the certificate {host} serves (remote error: tls: bad "
            "certificate); its SANs probably lack the member's address",
            f"check kubernetes.pem on {host} (`hardway certs check`), reissue it with every "
            "controller address and push it", bad_cert_line)
    return sorted(found.values(), key=lambda d: ORDER.index(d.problem))


def diagnose_client_error(host: str, kind: str | None, detail: str) -> Diagnosis | None:
    """A diagnosis for a refused HTTPS request from hardway itself (None: not recognised)."""
    if kind == "client-cert":
        return Diagnosis(Problem.CLIENT_CERT_REFUSED, host,
                         f"etcd on {host} refused hardway's client certificate",
                         "use the cluster CA's kubernetes.pem (--pki DIR holding ca.pem, "
                         "kubernetes.pem, kubernetes-key.pem of the CA the members trust)",
                         detail, host)
    if kind == "tls" and "SANs" in detail:
        return Diagnosis(Problem.PEER_CERT_SAN, host,
                         f"the certificate etcd on {host} serves does not list its address",
                         "reissue kubernetes.pem with every controller address and push it",
                         detail, host)
    return None


__all__ = ["Diagnosis", "Problem", "diagnose_client_error", "diagnose_journal"]
