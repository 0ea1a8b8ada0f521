"""ipfw rules as typed values: compile ``ipfw add`` arguments, print and parse ``ipfw list``.

Only the subset a Kubernetes-the-Hard-Way hypervisor needs is modelled::

    ipfw add [N] [set S] [prob P] ACTION PROTO from SRC to DST [dst-port PORT] [keep-state]

with ACTION one of ``fwd IP[,PORT]``, ``allow``, ``deny``, ``count``.  The wording of
the errors and the layout of the listing follow FreeBSD's ``sbin/ipfw/ipfw2.c``
(``compile_rule`` and ``show_static_rule``): rule numbers as ``%05u``, ``set N`` only
with ``-S``, ``# DISABLED`` before rules of disabled sets (``-S`` only), ``prob`` printed
with ``%f`` from the kernel's 31-bit fixed point value, and ``keep-state :default``
(the state name FreeBSD 12+ prints).  Anything else on a hypervisor's list is kept as
an :class:`IpfwRule` with ``action`` ``OTHER`` and its text, so a diff can show it.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

DEFAULT_RULE = 65535
"""The default rule's number (``deny ip from any to any`` unless the kernel allows)."""
RESVD_SET = 31
"""The reserved set: never disabled, holds the default rule."""
PROB_SCALE = 0x7FFFFFFF
"""The kernel stores ``prob`` as ``int(P * 0x7fffffff)``."""
AUTOINC_STEP = 100
"""net.inet.ip.fw.autoinc_step: the gap the kernel leaves for rules added without N."""

EX_USAGE = 64
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_OSERR = 71


class IpfwError(Exception):
    """An ipfw(8) error: ``message`` as ipfw prints it after ``ipfw: ``, and its exit code."""

    def __init__(self, message: str, exit_code: int = EX_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class Action(enum.Enum):
    """What a rule does when it matches."""

    FWD = "fwd"
    ALLOW = "allow"
    DENY = "deny"
    COUNT = "count"
    OTHER = "other"


_ACTION_WORDS = {"fwd": Action.FWD, "forward": Action.FWD, "allow": Action.ALLOW,
                 "accept": Action.ALLOW, "pass": Action.ALLOW, "permit": Action.ALLOW,
                 "deny": Action.DENY, "drop": Action.DENY, "count": Action.COUNT}
_PROTOS = ("ip", "tcp", "udp", "all")


@dataclass(frozen=True)
class IpfwRule:
    """One static rule.

    Attributes:
        number: the rule number (1..65535).
        set: the set it belongs to (0..31).
        action: FWD, ALLOW, DENY, COUNT (OTHER: a rule this model does not know).
        prob_fixed: the match probability as the kernel stores it (``int(P*0x7fffffff)``),
            None when the rule always matches.
        fwd_address: the ``fwd`` next hop (FWD only).
        fwd_port: the ``fwd`` port, or None to keep the packet's port.
        proto: ``tcp``, ``udp`` or ``ip``.
        src: source (``any``, an address, a CIDR).
        dst: destination (``any``, an address, a CIDR or ``table(NAME)``).
        dst_port: the destination port, or None for any.
        keep_state: the rule creates dynamic states (flows pinned to its action).
        disabled: the rule's set was disabled when listed (``ipfw -S list`` only).
        text: for OTHER rules, the body as listed (after number and set).
    """

    number: int
    set: int = 0
    action: Action = Action.ALLOW
    prob_fixed: int | None = None
    fwd_address: str | None = None
    fwd_port: int | None = None
    proto: str = "ip"
    src: str = "any"
    dst: str = "any"
    dst_port: int | None = None
    keep_state: bool = False
    disabled: bool = False
    text: str = ""

    @property
    def prob(self) -> float | None:
        """The match probability as ipfw reports it (None: always)."""
        return None if self.prob_fixed is None else self.prob_fixed / PROB_SCALE

    @property
    def body(self) -> str:
        """The rule as ``ipfw list`` prints it after the number and set."""
        if self.action is Action.OTHER:
            return self.text
        parts = []
        if self.prob_fixed is not None:
            parts.append(f"prob {self.prob_fixed / PROB_SCALE:f}")
        if self.action is Action.FWD:
            port = f",{self.fwd_port}" if self.fwd_port else ""
            parts.append(f"fwd {self.fwd_address}{port}")
        else:
            parts.append(self.action.value)
        parts += [self.proto, "from", self.src, "to", self.dst]
        if self.dst_port is not None:
            parts.append(f"dst-port {self.dst_port}")
        if self.keep_state:
            parts.append("keep-state :default")
        return " ".join(parts)

    def line(self, *, show_sets: bool = False) -> str:
        """The line ``ipfw list`` (``show_sets``: ``ipfw -S list``) prints for this rule."""
        head = "# DISABLED " if (show_sets and self.disabled) else ""
        setpart = f"set {self.set} " if show_sets else ""
        return f"{head}{self.number:05d} {setpart}{self.body}"

    def add_args(self) -> list[str]:
        """The arguments after ``ipfw`` that add this rule (``add N set S ...``)."""
        if self.action is Action.OTHER:
            raise ValueError(f"rule {self.number} is not modelled; it cannot be re-added")
        args = ["add", str(self.number), "set", str(self.set)]
        if self.prob_fixed is not None:
            args += ["prob", format_prob(self.prob_fixed / PROB_SCALE)]
        return args + self.body_args()

    def body_args(self) -> list[str]:
        """The rule's action and body as argument words (no number, set or prob)."""
        if self.action is Action.FWD:
            port = f",{self.fwd_port}" if self.fwd_port else ""
            args = ["fwd", f"{self.fwd_address}{port}"]
        else:
            args = [self.action.value]
        args += [self.proto, "from", self.src, "to", self.dst]
        if self.dst_port is not None:
            args += ["dst-port", str(self.dst_port)]
        if self.keep_state:
            args.append("keep-state")
        return args

    def same_as(self, other: IpfwRule) -> bool:
        """Equal in everything that changes traffic (number, set, match and action)."""
        return replace(self, disabled=False) == replace(other, disabled=False)


def prob_fixed(value: float) -> int:
    """The kernel's fixed-point form of probability ``value`` (as ``compile_rule`` stores it)."""
    return int(value * PROB_SCALE)


def format_prob(value: float) -> str:
    """``value`` written for an ``ipfw add ... prob P`` argument (six decimals, like %f)."""
    return f"{value:f}"


def _substr(word: str, keyword: str) -> bool:
    """ipfw's ``_substrcmp``: ``word`` is a prefix of ``keyword``."""
    return bool(word) and keyword.startswith(word)


def _parse_address(word: str, what: str) -> str:
    if word in ("any", "me"):
        return word
    if word.startswith("table(") and word.endswith(")") and len(word) > 7:
        return word
    try:
        net = ipaddress.ip_network(word, strict=False)
    except ValueError:
        raise IpfwError(f"bad {what} address {word}", EX_USAGE) from None
    if "/" in word and net.prefixlen != net.max_prefixlen:
        return str(net)
    return str(net.network_address)


def _parse_port(word: str, what: str) -> int:
    if not word.isdigit() or not 0 < int(word) < 65536:
        raise IpfwError(f"invalid {what} port {word}", EX_DATAERR)
    return int(word)


def compile_add(args: Sequence[str]) -> IpfwRule:
    """Compile the words after ``ipfw add`` into a rule (number 0: the kernel picks one).

    Raises:
        IpfwError: the message and exit code ipfw(8) gives for the same mistake.
    """
    av = list(args)
    i = 0

    def need(message: str) -> str:
        if i >= len(av):
            raise IpfwError(message, EX_USAGE)
        return av[i]

    number = 0
    if i < len(av) and av[i][:1].isdigit():
        number = int(re.match(r"\d+", av[i]).group(0))  # type: ignore[union-attr]  # atoi
        i += 1
    rule_set = 0
    if i + 1 < len(av) and _substr(av[i], "set"):
        word = av[i + 1]
        digits = re.match(r"\d*", word).group(0)  # type: ignore[union-attr]  # strtoul
        value = int(digits) if digits else 0
        if value > RESVD_SET:
            raise IpfwError(f"illegal set {word}", EX_DATAERR)
        rule_set = value
        i += 2
    fixed: int | None = None
    if i + 1 < len(av) and _substr(av[i], "prob"):
        word = av[i + 1]
        match = re.match(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", word)
        value_f = float(match.group(0)) if match else 0.0  # strtod
        if value_f <= 0 or value_f > 1:
            raise IpfwError(f"illegal match prob. {word}", EX_DATAERR)
        fixed = None if value_f == 1 else prob_fixed(value_f)
        i += 2
    word = need("missing action")
    action = _ACTION_WORDS.get(word)
    if action is None:
        raise IpfwError(f"invalid action {word}\n", EX_DATAERR)
    i += 1
    fwd_address: str | None = None
    fwd_port: int | None = None
    if action is Action.FWD:
        target = need("missing forward address[:port]")
        host, sep, port_text = target.partition(",")
        if not sep and target.count(":") == 1:
            host, sep, port_text = target.partition(":")
        if sep:
            if not port_text.isdigit():
                raise IpfwError(f"illegal forwarding port ``{port_text}''", EX_DATAERR)
            fwd_port = int(port_text) & 0xFFFF
        try:
            fwd_address = str(ipaddress.ip_address(host))
        except ValueError:
            raise IpfwError("hostname nor servname provided, or not known", EX_DATAERR) \
                from None
        i += 1
    proto = need("missing protocol")
    if proto not in _PROTOS:
        raise IpfwError(f"invalid protocol ``{proto}''", EX_DATAERR)
    proto = "ip" if proto == "all" else proto
    i += 1
    if i >= len(av) or not _substr(av[i], "from"):
        raise IpfwError("missing ``from''", EX_USAGE)
    i += 1
    src = _parse_address(need("missing source address"), "source")
    i += 1
    if i < len(av) and av[i] == "any":
        i += 1
    if i >= len(av) or not _substr(av[i], "to"):
        raise IpfwError("missing ``to''", EX_USAGE)
    i += 1
    dst = _parse_address(need("missing dst address"), "destination")
    i += 1
    dst_port: int | None = None
    if i < len(av) and av[i].isdigit():  # `to ADDR PORT`
        dst_port = _parse_port(av[i], "destination")
        i += 1
    keep_state = False
    while i < len(av):
        word = av[i]
        i += 1
        if word == "dst-port":
            port_word = need("missing destination port")
            dst_port = None if port_word == "any" else _parse_port(port_word, "destination")
            i += 1
        elif word in ("keep-state", "record-state"):
            if keep_state:
                raise IpfwError("only one of keep-state, record-state,  limit and "
                                "set-limit is allowed", EX_USAGE)
            keep_state = True
            if i < len(av) and av[i].startswith(":"):
                i += 1
        else:
            raise IpfwError(f"unrecognised option [-1] {word}\n", EX_USAGE)
    if dst_port is not None and proto not in ("tcp", "udp"):
        raise IpfwError(f"invalid destination port {dst_port}", EX_DATAERR)
    return IpfwRule(number=number, set=rule_set, action=action, prob_fixed=fixed,
                    fwd_address=fwd_address, fwd_port=fwd_port, proto=proto, src=src,
                    dst=dst, dst_port=dst_port, keep_state=keep_state)


_LINE = re.compile(r"^(?P<disabled># DISABLED )?(?P<number>\d{5}) "
                   r"(?:(?P<counters>\d+ +\d+ ))?(?:set (?P<set>\d+) )?(?P<body>.*)$")


def parse_line(line: str, *, default_set: int = 0) -> IpfwRule:
    """Parse one line of ``ipfw list`` / ``ipfw -S list`` / ``ipfw show`` output.

    Rules outside the modelled subset come back with ``action=Action.OTHER`` and their
    text; a line that is not a rule at all raises ValueError.
    """
    match = _LINE.match(line.rstrip("\n"))
    if match is None:
        raise ValueError(f"not an ipfw rule line: {line!r}")
    number = int(match["number"])
    rule_set = int(match["set"]) if match["set"] is not None else default_set
    disabled = match["disabled"] is not None
    body = match["body"].strip()
    words = body.split()
    if words[-2:] == ["keep-state", ":default"]:
        words = words[:-1]
    try:
        rule = compile_add([str(number), "set", str(rule_set), *words])
    except IpfwError:
        return IpfwRule(number=number, set=rule_set, action=Action.OTHER, disabled=disabled,
                        text=body)
    return replace(rule, disabled=disabled)


def parse_list(text: str) -> list[IpfwRule]:
    """Every rule of an ``ipfw [-S] list`` output (blank and dynamic-state lines skipped)."""
    rules = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("##") or " STATE " in line:
            continue
        rules.append(parse_line(line))
    return rules


__all__ = [
    "AUTOINC_STEP",
    "DEFAULT_RULE",
    "EX_DATAERR",
    "EX_OSERR",
    "EX_UNAVAILABLE",
    "EX_USAGE",
    "PROB_SCALE",
    "RESVD_SET",
    "Action",
    "IpfwError",
    "IpfwRule",
    "compile_add",
    "format_prob",
    "parse_line",
    "parse_list",
    "prob_fixed",
]
