"""Findings repeated per host are listed once, naming the hosts as a host set."""

from __future__ import annotations

from tui.core.pki.diagnose import CertFinding
from tui.core.pki.grouping import group_findings


def _missing(host: str) -> CertFinding:
    return CertFinding("error", host, "kubernetes.pem",
                       f"/var/lib/kubernetes/kubernetes.pem is missing on {host}.",
                       f"push it to {host} with `hardway certs push -w {host}`")


def test_the_same_problem_on_three_hosts_is_one_finding() -> None:
    groups = group_findings([_missing("controller-0"), _missing("controller-1"),
                             _missing("controller-2")])
    assert len(groups) == 1
    (group,) = groups
    assert group.hosts == ("controller-0", "controller-1", "controller-2")
    assert group.finding.message == ("/var/lib/kubernetes/kubernetes.pem is missing on "
                                     "controller-[0-2].")
    assert group.finding.fix.endswith("`hardway certs push -w controller-[0-2]`")
    assert group.finding.host == "controller-[0-2]"


def test_different_problems_and_local_findings_stay_apart_in_order() -> None:
    san = CertFinding("error", "controller-1", "kubernetes.pem",
                      "kubernetes.pem on controller-1 lacks 10.10.0.11", "reissue it")
    local = CertFinding("warning", None, "ca.pem", "ca.pem expires in 20 days", "renew")
    groups = group_findings([_missing("controller-0"), san, local, _missing("controller-2")])
    assert [g.hosts for g in groups] == [("controller-0", "controller-2"), ("controller-1",),
                                         ()]
    assert "controller-0,2" in groups[0].finding.message or \
        "controller-[0,2]" in groups[0].finding.message
    assert groups[1].finding is san and groups[2].finding is local


def test_a_host_name_inside_another_word_is_not_replaced() -> None:
    a = CertFinding("error", "c-1", "x.pem", "c-1 and c-10 differ on c-1", "")
    b = CertFinding("error", "c-2", "x.pem", "c-2 and c-10 differ on c-2", "")
    (group,) = group_findings([a, b])
    assert group.finding.message == "c-[1-2] and c-10 differ on c-[1-2]"


def test_grouped_findings_keep_their_actions_and_name_the_screen_keys() -> None:
    from screens.certs import screen_fix
    from tui.core.pki.diagnose import FixAction

    def wrong(host: str) -> CertFinding:
        return CertFinding("error", host, "admin.kubeconfig",
                           f"/root/admin.kubeconfig on {host} points admin elsewhere.",
                           "rewrite it, then copy it", (FixAction.ISSUE,),
                           f"copy pki/admin.kubeconfig to /root/admin.kubeconfig on {host}")

    (group,) = group_findings([wrong("controller-0"), wrong("controller-2")])
    assert group.finding.actions == (FixAction.ISSUE,)
    assert screen_fix(group.finding) == (
        "press i to issue, then copy pki/admin.kubeconfig to /root/admin.kubeconfig on "
        "controller-[0,2]")
    pushed = CertFinding("error", "c", "x", "m", "f", (FixAction.ISSUE, FixAction.PUSH))
    assert screen_fix(pushed) == "press i to issue, then p to push"
    journal = CertFinding("error", "c", "x", "m", "f", (FixAction.PUSH, FixAction.RESTORE))
    assert screen_fix(journal) == "press p to push, or u to restore"
    assert screen_fix(CertFinding("error", "c", "x", "m", "look at journalctl")) == (
        "look at journalctl")
    other = CertFinding("error", "controller-1", "admin.kubeconfig",
                        "/root/admin.kubeconfig on controller-1 points admin elsewhere.",
                        "rewrite it, then copy it", (), "copy it")
    assert len(group_findings([wrong("controller-0"), other])) == 2  # actions differ
