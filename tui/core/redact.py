"""The one redactor: every sink (audit log, console history, transcripts) uses it.

:class:`Redactor` replaces secrets in text with ``[REDACTED]`` (private-key blocks with
``[REDACTED PRIVATE KEY]``).  It knows two kinds of secret:

* forms (:data:`RULES`): the secret part of a command line or of output, recognised by
  its shape: ``--password x``, ``-pSECRET`` for mysql, ``curl -u user:pass``,
  ``https://user:pw@host``, ``X_SECRET=`` / ``X_TOKEN=`` / ``X_KEY=`` assignments,
  ``Authorization: Bearer x``, ``htpasswd -b FILE user pw``, ``openssl -k x`` and
  ``-pass pass:x``, ``echo pw | sudo -S``, ``nsupdate -y`` / ``dig -y alg:name:SECRET``,
  BIND ``secret "..."`` clauses, well-known token shapes (JWT, GitHub, Slack, AWS key
  ids) and PEM private keys;
* known secrets: exact strings registered with :meth:`Redactor.add_secret`, above all the
  inventory's own (:meth:`Redactor.add_inventory`: the TSIG secret file's contents and
  the encryption key of the PKI directory's ``encryption-config.yaml``), removed wherever
  they appear.

:class:`LineRedactor` does the same over a stream of lines, so a private key printed by
``cat`` is removed from its ``BEGIN`` line to its ``END`` line; a ``BEGIN`` without its
``END`` (``grep -A3 BEGIN key.pem``) hides only the base64 lines that follow it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.core.inventory.model import Inventory

REDACTED = "[REDACTED]"
PRIVATE_KEY_REDACTED = "[REDACTED PRIVATE KEY]"
MIN_SECRET_LENGTH = 4
"""Registered secrets shorter than this are ignored (they would redact ordinary text)."""

Redact = Callable[[str], str]
"""A function that returns its argument with secrets replaced."""

_VALUE = r"""(?P<value>'[^']*'|"[^"]*"|[^\s'"]+)"""
_BARE = r"""(?P<value>'[^']*'|"[^"]*"|[^\s;,&|'"]+)"""


class Rule:
    """One secret form: ``pattern``'s group ``value`` is what gets replaced.

    The expression is compiled when first used, not when the module loads (the app's
    start-up imports this module and has nothing to redact before its first frame).

    Attributes:
        name: what the form is (for tests and documentation).
    """

    __slots__ = ("_flags", "_pattern", "_source", "name")

    def __init__(self, name: str, source: str, flags: int = 0) -> None:
        self.name = name
        self._source = source
        self._flags = flags
        self._pattern: re.Pattern[str] | None = None

    @property
    def pattern(self) -> re.Pattern[str]:
        """A regular expression with a named group ``value``."""
        if self._pattern is None:
            self._pattern = re.compile(self._source, self._flags)
        return self._pattern


RULES: tuple[Rule, ...] = (
    Rule("option with a secret value (--password x, --token=x, --tsig-secret x)",
          r"(?<![\w-])--?(?:tsig-secret|client-secret|secret|password|passwd|token|"
          r"api-key|apikey|access-key|secret-key|auth-token)(?:=|\s+)" + _VALUE,
          re.IGNORECASE),
    Rule("user:password option (curl -u, etcdctl --user, --user=)",
          r"(?<![\w-])(?:-u|--user|-U|--username|--proxy-user)(?:=|\s+)['\"]?[^\s:'\"]+:"
          r"(?P<value>[^\s'\"]+)"),
    Rule("password in a URL (scheme://user:pw@host)",
          r"\b[a-z][a-z0-9+.-]*://[^\s/:@]+:(?P<value>[^\s/@]+)(?=@)", re.IGNORECASE),
    Rule("mysql -pSECRET",
          r"\b(?:mysql|mysqldump|mysqladmin|mariadb)\b[^|;&\n]*?\s-p(?P<value>[^\s'\"]+|'[^']*'|"
          r"\"[^\"]*\")"),
    Rule("sshpass -p / redis-cli -a / docker login -p",
          r"\b(?:sshpass\s+-p|redis-cli\b[^|;&\n]*?\s-a|(?:docker|podman)\s+login\b"
          r"[^|;&\n]*?\s-p)\s*" + _VALUE),
    Rule("secret-looking assignment (X_SECRET=, X_TOKEN=, password=, secret: ...)",
          r"(?<![\w.-])(?![\w.-]*(?:_file|_path|_dir|-file|-path|-dir)\s*[=:])"
          r"[\w.-]*(?:secret|password|passwd|token)[\w.-]*\s*[=:]\s*(?!\s)" + _BARE,
          re.IGNORECASE),
    Rule("key assignment (AWS_ACCESS_KEY=, ENCRYPTION_KEY=, API_KEY=)",
          r"(?<![\w.-])[A-Z0-9_]*_?KEY\s*=\s*(?![/~.]|\$\(|\$\{?[A-Z_])" + _BARE),
    Rule("HTTP authorization (Authorization: SCHEME x, Bearer x, Basic x)",
          r"(?:\bAuthorization:\s*[A-Za-z]+|\b(?:Bearer|Basic))\s+"
          r"(?=[A-Za-z0-9._~+/=-]{8,})(?P<value>[A-Za-z._~+/=-]*[0-9+/=_~][A-Za-z0-9._~+/=-]*)",
          re.IGNORECASE),
    Rule("htpasswd -b FILE user pw",
          r"\bhtpasswd\s+(?:-\w*b\w*\s+)(?:-\w+\s+)*(?:(?!-)\S+\s+){1,2}" + _VALUE),
    Rule("openssl -k / -K key",
          r"\bopenssl\b[^|;&\n]*?\s-[kK]\s+" + _VALUE),
    Rule("openssl -pass pass:x (-passin, -passout)",
          r"(?<![\w-])-pass(?:in|out|word)?\s+['\"]?pass:(?P<value>[^\s'\"]+)"),
    Rule("echo pw | sudo -S",
          r"\b(?:echo|printf)\s+(?:-[neE]+\s+)?(?:'%s\\n'\s+)?" + _VALUE
          + r"(?=\s*\|\s*sudo\b[^|;&\n]*?\s-\w*S)"),
    Rule("TSIG key on the command line (nsupdate -y, dig -y [alg:]name:secret)",
          r"\b(?:nsupdate|dig|kdig|drill|delv|host)\b[^|;&\n]*?\s-y\s+['\"]?"
          r"(?:hmac-[\w-]+:)?[^\s:'\"]+:(?P<value>[^\s'\"]+)"),
    Rule("BIND secret clause (secret \"...\";)",
          r"\bsecret\s+(?P<value>\"[^\"]*\")", re.IGNORECASE),
    Rule("netrc password (login u password p)",
          r"\blogin\s+\S+\s+password\s+" + _VALUE),
    Rule("JSON web token (service account tokens)",
          r"\b(?P<value>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"),
    Rule("GitHub / Slack / AWS token shapes",
          r"\b(?P<value>(?:gh[pousr]|github_pat)_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}"
          r"|AKIA[0-9A-Z]{16})\b"),
)
_PEM_PRIVATE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)",
    re.DOTALL)
_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----")
_PEM_BODY = re.compile(r"^\s*(?:[A-Za-z0-9+/=]{1,100}|Proc-Type:.*|DEK-Info:.*)?\s*$")
_BIND_KEY_SECRET = re.compile(r"""\bsecret\s+"([^"]+)"\s*;""")
_YAML_SECRET = re.compile(r"^\s*secret:\s*['\"]?([A-Za-z0-9+/=]{8,})['\"]?\s*$", re.MULTILINE)


def _replace(rule: Rule, text: str) -> str:
    def one(match: re.Match[str]) -> str:
        start, end = match.span("value")
        base = match.start()
        whole = match.group(0)
        return whole[: start - base] + REDACTED + whole[end - base:]

    return rule.pattern.sub(one, text)


class Redactor:
    """Replaces secret forms and known secrets in text (see the module docstring).

    Args:
        secrets: exact secrets to remove wherever they appear.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add_secret(secret)

    @property
    def known(self) -> int:
        """How many exact secrets are registered."""
        return len(self._secrets)

    def add_secret(self, secret: str) -> None:
        """Never let ``secret`` through (ignored when shorter than MIN_SECRET_LENGTH)."""
        secret = secret.strip()
        if len(secret) >= MIN_SECRET_LENGTH:
            self._secrets.add(secret)

    def add_inventory(self, inventory: Inventory, pki: Path | None = None) -> None:
        """Register the inventory's secrets: the TSIG secret, the encryption key.

        Args:
            inventory: its ``dns.tsig_secret_file`` is read (a bare base64 line, or a
                BIND ``key { secret "..."; }`` file); unreadable files are skipped (lint
                reports them).
            pki: the PKI directory whose ``encryption-config.yaml`` holds the encryption
                key (default: ``pki/`` next to the inventory).
        """
        from tui.core.inventory.safefile import NotReadable, read_small

        files: list[Path] = []
        if inventory.dns is not None and inventory.dns.tsig_secret_file is not None:
            files.append(Path(inventory.dns.tsig_secret_file))
        directory = pki if pki is not None else Path(inventory.path).parent / "pki"
        files.append(directory / "encryption-config.yaml")
        for path in files:
            try:
                text = read_small(path, 64 * 1024).decode("utf-8", errors="replace")
            except NotReadable:
                continue
            for secret in secrets_in_file(text):
                self.add_secret(secret)

    def redact(self, text: str) -> str:
        """``text`` with every known secret and every secret form replaced."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        if "PRIVATE KEY-----" in text:
            text = _PEM_PRIVATE.sub(PRIVATE_KEY_REDACTED, text)
        for rule in RULES:
            text = _replace(rule, text)
        return text

    __call__ = redact

    def contains(self, text: str) -> bool:
        """True when :meth:`redact` would change ``text``."""
        return self.redact(text) != text

    def lines(self) -> LineRedactor:
        """A stream redactor sharing this redactor's secrets."""
        return LineRedactor(self.redact)


def secrets_in_file(text: str) -> list[str]:
    """The secrets held by a secret file's ``text``.

    A BIND key file gives its ``secret "..."`` values, an encryption config its
    ``secret:`` values; any other file is one secret (its stripped contents).
    """
    found = _BIND_KEY_SECRET.findall(text) + _YAML_SECRET.findall(text)
    if found:
        return found
    stripped = text.strip()
    return [stripped] if stripped and "\n" not in stripped else [
        line.strip() for line in stripped.splitlines() if line.strip()]


class LineRedactor:
    """Redacts a stream of lines, including multi-line private-key blocks.

    Args:
        redact: an extra redaction applied to each line before the forms (e.g. a
            :class:`Redactor`'s, with registered secrets).
    """

    def __init__(self, redact: Redact | None = None) -> None:
        self._extra = redact
        self._pem_end: str | None = None

    def _redact(self, text: str) -> str:
        if self._extra is not None:
            text = self._extra(text)
        return PATTERNS.redact(text)

    def line(self, text: str) -> str | None:
        """The redacted line, or None when the line is inside a private key and dropped.

        The ``BEGIN ... PRIVATE KEY`` line becomes ``[REDACTED PRIVATE KEY]``; the lines
        after it are dropped up to and including the matching ``END`` line, or up to the
        first line that is not base64 (a ``BEGIN`` without ``END``, e.g. from ``grep -A3``
        or ``head``), which is kept.
        """
        if self._pem_end is not None:
            if self._pem_end in text:
                self._pem_end = None
                return None
            if _PEM_BODY.match(text):
                return None
            self._pem_end = None
        begin = _PEM_BEGIN.search(text)
        if begin is not None:
            end = f"-----END {begin.group(1)}PRIVATE KEY-----"
            if end not in text[begin.end():]:
                self._pem_end = end
                return self._redact(text[:begin.start()]) + PRIVATE_KEY_REDACTED
        return self._redact(text)


PATTERNS = Redactor()
"""A redactor with the forms only (no registered secrets)."""


def redact(text: str) -> str:
    """``text`` with every secret form replaced (no registered secrets)."""
    return PATTERNS.redact(text)
