"""The embedded lab: in-process asyncssh hosts on loopback with their own roots.

Modules:
    lab        Lab (start/stop hosts, write the lab's files) and LabRunner (a Lab on a
               background thread: tests, ``hardway demo``).
    server     one lab host: its asyncssh listener, login policy, stop/start.
    session    one SSH session: real processes, PTYs, signals, SFTP, cleanup.
    processes  finding and ending every process a lab host started.
    files      keys, known_hosts, ssh_config, inventory.toml and the shims.

Nothing here imports Textual.
"""
