"""Certificates the KTHW way (Textual-free, ``cryptography`` only).

Modules: :mod:`~tui.core.pki.ca` (create/load the CA, issue), :mod:`~tui.core.pki.profiles`
(KTHW subjects and SANs from the inventory, write pairs), :mod:`~tui.core.pki.inspect`
(what a file or a TLS server really holds), :mod:`~tui.core.pki.diagnose` (findings in plain
words with the fix).
"""
