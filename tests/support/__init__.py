"""Reusable helpers for tests and benchmarks (real OpenSSH sshd on loopback, ...)."""
