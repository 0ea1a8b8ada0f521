"""The embedded lab: in-process asyncssh hosts on loopback with their own roots.

Modules:
    lab            Lab (start/stop hosts, write the lab's files) and LabRunner (a Lab on a
                   background thread: tests, ``hardway demo``).
    server         one lab host: its asyncssh listener, login policy, stop/start/boot.
    session        one SSH session: real processes, PTYs, signals, SFTP, cleanup.
    processes      finding and ending every process a lab host started.
    files          keys, known_hosts, ssh_config, inventory.toml and the shims.
    supervisor     a host's tiny systemd: units, enable/disable, boot and shutdown.
    service        one service's process, states, restarts and journal lines.
    systemd_unit   unit files and ExecStart= lines parsed exactly like systemd.
    journal        a host's journal (what services printed, what systemd said).
    control        the control socket behind the ``systemctl``/``journalctl`` shims.
    systemctl      ``systemctl`` verbs with systemd's wording and exit codes.
    journalctl     ``journalctl -u/-n/-f/-o``.
    control_plane  the kube-apiserver unit, its stand-in shim, the encryption config.
    pki_setup      the lab's CA and KTHW certificates in DIR/pki, installed on hosts.
    cluster        writing the cluster before boot and waiting for it to serve.
    scenarios      the state a lab cluster starts in (healthy, seed-cert-bug, ...).
    standins/      programs installed on lab hosts (kube-apiserver, the shim client).

Nothing here imports Textual.
"""
