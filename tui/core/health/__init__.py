"""Health of the control plane: probes, the poller, rise/fall, history and reports.

* :mod:`~tui.core.health.model`: ``Probe`` (name, target, timeout), ``Outcome``
  (ok/warn/fail, latency, detail, verbose output), ``run_probe``.
* Checks: :mod:`ssh_check` (keepalive round trip over the Fleet), :mod:`etcd_checks`
  (/health, v3 status and member list), :mod:`http_checks` (kube-apiserver livez/readyz,
  nginx, scheduler, controller-manager), :mod:`cert_checks` (served certificates),
  :mod:`dns_checks` (records; the ``Resolver`` seam), :mod:`vip_checks` (round robin
  through the VIP; the ``VipBackends`` seam).  :mod:`probes` holds the one-shot probes
  plans use (certificate rollout).
* :mod:`client`: kept-alive HTTP(S) connections through the Dialer.
* :mod:`catalog`: the probes an inventory gets; :mod:`session`: probes + poller + client.
* :mod:`states` (HAProxy rise/fall), :mod:`history` (bounded latency ring),
  :mod:`poller` (rounds and typed events), :mod:`report` (verdict, summary, text, JSON).
"""
