"""Programs the lab installs on its hosts, run by the lab's Python interpreter.

Each module here is a standalone script (standard library, plus ``cryptography`` for the
kube-apiserver stand-in): it must not import ``tui``, because it runs as
``python -P FILE`` from a shim on a lab host.

Modules:
    lab_ctl         the client behind the ``systemctl`` and ``journalctl`` shims.
    kube_apiserver  the kube-apiserver stand-in (HTTPS health endpoints, /version and the
                    real one's self-signed certificate behaviour).
"""
