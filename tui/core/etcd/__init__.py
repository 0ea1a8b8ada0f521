"""etcd for KTHW doc 07: unit rendering, HTTPS client, bootstrap plan, diagnosis, day two.

Textual-free.  Modules:

- :mod:`.unit`: the ``etcd.service`` unit from the inventory (KTHW's, byte for byte);
- :mod:`.client`: HTTPS to etcd (``/health``, ``/version``, the v3 JSON gateway);
- :mod:`.snapshot`: verify a snapshot file (the SHA-256 etcd appends);
- :mod:`.release`: the release tarball (cache, ``SHA256SUMS``, members);
- :mod:`.bootstrap`: the bootstrap :class:`~tui.core.plan.Plan` (steps 1-6 of doc 07);
- :mod:`.cluster`: cluster status seen over HTTPS, compared with the inventory;
- :mod:`.diagnose`: journal lines and endpoint answers in plain words with the fix;
- :mod:`.clock`: clock skew between controllers, read over SSH;
- :mod:`.replace`: replace a dead member (remove, re-add, restart with ``existing``).
"""
