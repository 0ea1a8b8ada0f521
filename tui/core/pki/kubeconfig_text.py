"""Read and write kubeconfig files in the layout ``kubectl config`` writes (Textual-free).

The project has no YAML dependency, so this is a small strict reader of the block layout
kubectl produces (``key: value`` mappings, ``- `` sequences, plain or quoted scalars,
``{}`` / ``[]``) plus JSON, which kubectl accepts too.  Anything else (anchors, flow
collections with content, block scalars, tabs) is refused with the file and line named,
never guessed at.

Usage::

    doc = parse_kubeconfig(data, "controller-0:/root/admin.kubeconfig")
    doc.server, doc.client_certificate_pem, doc.ca_pem
    text = render_kubeconfig(cluster="lab", server="https://127.0.0.1:6443", user="admin",
                             ca_pem=..., cert_pem=..., key_pem=...)
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from tui.core.errors import UserError

__all__ = ["KubeconfigDoc", "parse_kubeconfig", "parse_layout", "render_kubeconfig"]


class _Bad(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class _Line:
    number: int
    indent: int
    text: str


def _lines(text: str) -> list[_Line]:
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw[:len(raw) - len(raw.lstrip())]:
            raise _Bad(number, "a tab in the indentation (YAML allows spaces only)")
        stripped = raw.strip()
        if not stripped or stripped.startswith("#") or stripped in ("---", "..."):
            continue
        out.append(_Line(number, len(raw) - len(raw.lstrip(" ")), raw.strip()))
    return out


def _scalar(text: str, line: int) -> Any:
    text = text.strip()
    if text.startswith('"'):
        end = text.rfind('"')
        if end == 0:
            raise _Bad(line, "an unterminated double-quoted string")
        try:
            return json.loads(text[:end + 1])
        except ValueError as exc:
            raise _Bad(line, f"a double-quoted string YAML allows but this reader does "
                       f"not ({exc})") from None
    if text.startswith("'"):
        end = text.rfind("'")
        if end == 0:
            raise _Bad(line, "an unterminated single-quoted string")
        return text[1:end].replace("''", "'")
    if text in ("{}", "[]"):
        return {} if text == "{}" else []
    if text[:1] in ("{", "[", "&", "*", "!", "|", ">", "%", "@", "`"):
        raise _Bad(line, f"{text[:20]!r}: anchors, tags, block scalars and flow collections "
                   "with content are not in kubectl's layout")
    if " #" in text:
        text = text.split(" #", 1)[0].rstrip()
    return None if text in ("", "~", "null") else text


def _split_key(text: str, line: int) -> tuple[str, str]:
    if text.startswith(('"', "'")):
        quote = text[0]
        end = text.find(quote, 1)
        if end < 0 or not text[end + 1:].startswith(":"):
            raise _Bad(line, f"a quoted key without ':' after it: {text[:40]!r}")
        return text[1:end], text[end + 2:]
    key, colon, rest = text.partition(": ")
    if not colon:
        if text.endswith(":"):
            return text[:-1], ""
        raise _Bad(line, f"expected 'key: value', found {text[:40]!r}")
    return key, rest


def _block(lines: list[_Line], index: int, indent: int) -> tuple[Any, int]:
    """The mapping or sequence whose lines start at ``indent``."""
    if lines[index].text == "-" or lines[index].text.startswith("- "):
        return _sequence(lines, index, indent)
    return _mapping(lines, index, indent)


def _value_after(lines: list[_Line], index: int, indent: int, rest: str,
                 line: int) -> tuple[Any, int]:
    """The value of a key at ``indent`` whose text after the colon is ``rest``."""
    if rest.strip():
        return _scalar(rest, line), index
    if index < len(lines):
        following = lines[index]
        if following.indent > indent:
            return _block(lines, index, following.indent)
        if following.indent == indent and (following.text == "-"
                                           or following.text.startswith("- ")):
            return _sequence(lines, index, indent)
    return None, index


def _mapping(lines: list[_Line], index: int, indent: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    while index < len(lines) and lines[index].indent == indent:
        current = lines[index]
        if current.text == "-" or current.text.startswith("- "):
            break
        key, rest = _split_key(current.text, current.number)
        if key in result:
            raise _Bad(current.number, f"the key {key!r} appears twice in one mapping")
        result[key], index = _value_after(lines, index + 1, indent, rest, current.number)
    if index < len(lines) and lines[index].indent > indent:
        raise _Bad(lines[index].number, "unexpected indentation")
    return result, index


def _sequence(lines: list[_Line], index: int, indent: int) -> tuple[list[Any], int]:
    result: list[Any] = []
    while index < len(lines) and lines[index].indent == indent and (
            lines[index].text == "-" or lines[index].text.startswith("- ")):
        current = lines[index]
        body = current.text[1:].lstrip(" ")
        if not body:
            value, index = _value_after(lines, index + 1, indent, "", current.number)
            result.append(value)
            continue
        inner = indent + (len(current.text) - len(body))
        if body.startswith(("'", '"')) or (": " not in body and not body.endswith(":")):
            result.append(_scalar(body, current.number))
            index += 1
            continue
        lines[index] = _Line(current.number, inner, body)  # "- key: v" is a mapping at +2
        value, index = _mapping(lines, index, inner)
        result.append(value)
    return result, index


def parse_layout(text: str, source: str) -> Any:
    """The document in ``text`` (kubectl's YAML layout, or JSON) as dicts, lists, strings.

    Raises:
        UserError: the text is not in that layout; the message names ``source`` and line.
    """
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise UserError(f"{source} is not valid JSON: {exc}.") from None
    try:
        lines = _lines(text)
        if not lines:
            raise _Bad(1, "the file is empty")
        value, index = _block(lines, 0, lines[0].indent)
        if index < len(lines):
            raise _Bad(lines[index].number, "unexpected indentation")
        return value
    except _Bad as exc:
        raise UserError(f"{source} line {exc.line}: {exc}. hardway reads kubeconfigs in the "
                        "layout `kubectl config` writes (or JSON).") from None


@dataclass(frozen=True)
class KubeconfigDoc:
    """The parts of a kubeconfig hardway checks (of its current context).

    Attributes:
        source: where it was read (``HOST:PATH`` or a local path).
        cluster: the cluster entry's name.
        user: the user entry's name.
        server: the cluster's server URL ("" when absent).
        ca_pem: decoded certificate-authority-data (None: absent).
        client_certificate_pem: decoded client-certificate-data (None: absent).
        client_key_pem: decoded client-key-data (None: absent).
        referenced_files: file paths given instead of embedded data (not read).
    """

    source: str
    cluster: str
    user: str
    server: str
    ca_pem: bytes | None
    client_certificate_pem: bytes | None
    client_key_pem: bytes | None
    referenced_files: tuple[str, ...] = ()


def _named(items: Any, kind: str, name: str | None, source: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(items, list) or not items:
        raise UserError(f"{source} has no {kind}s list.")
    entries = [i for i in items if isinstance(i, dict)]
    chosen = next((e for e in entries if e.get("name") == name), None) if name else None
    if chosen is None:
        if name is not None or len(entries) != 1:
            raise UserError(f"{source}: its current context names {kind} {name!r}, which "
                            f"is not in its {kind}s list.")
        chosen = entries[0]
    body = chosen.get(kind) or {}
    if not isinstance(body, dict):
        raise UserError(f"{source}: the {kind} {chosen.get('name')!r} is not a mapping.")
    return str(chosen.get("name") or ""), body


def _decode(value: Any, field: str, source: str) -> bytes | None:
    if value is None:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise UserError(f"{source}: {field} is not base64.") from None


def parse_kubeconfig(data: bytes, source: str) -> KubeconfigDoc:
    """The current context's cluster and user of a kubeconfig.

    Raises:
        UserError: not a kubeconfig hardway can read (the message names ``source``).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{source} is not UTF-8 text: not a kubeconfig.") from None
    doc = parse_layout(text, source)
    if not isinstance(doc, dict) or doc.get("kind", "Config") != "Config":
        raise UserError(f"{source} is not a kubeconfig (kind: Config).")
    context_name = doc.get("current-context") or None
    cluster_name = user_name = None
    if context_name is not None:
        _name, context = _named(doc.get("contexts"), "context", str(context_name), source)
        cluster_name, user_name = context.get("cluster"), context.get("user")
    cluster_name, cluster = _named(doc.get("clusters"), "cluster", cluster_name, source)
    user_name, user = _named(doc.get("users"), "user", user_name, source)
    referenced = tuple(str(v) for k, v in (*cluster.items(), *user.items())
                       if k in ("certificate-authority", "client-certificate", "client-key")
                       and v)
    return KubeconfigDoc(
        source, cluster_name, user_name, str(cluster.get("server") or ""),
        _decode(cluster.get("certificate-authority-data"), "certificate-authority-data",
                source),
        _decode(user.get("client-certificate-data"), "client-certificate-data", source),
        _decode(user.get("client-key-data"), "client-key-data", source),
        referenced)


def render_kubeconfig(*, cluster: str, server: str, user: str, ca_pem: bytes,
                      cert_pem: bytes, key_pem: bytes) -> str:
    """A kubeconfig as ``kubectl config set-cluster/set-credentials --embed-certs`` and
    ``set-context default`` / ``use-context default`` write it (KTHW doc 05)."""
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {b64(ca_pem)}\n"
        f"    server: {server}\n"
        f"  name: {cluster}\n"
        "contexts:\n"
        "- context:\n"
        f"    cluster: {cluster}\n"
        f"    user: {user}\n"
        "  name: default\n"
        "current-context: default\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        f"- name: {user}\n"
        "  user:\n"
        f"    client-certificate-data: {b64(cert_pem)}\n"
        f"    client-key-data: {b64(key_pem)}\n")
