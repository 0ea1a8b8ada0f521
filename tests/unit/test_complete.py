"""Tab completion in the broadcast bar."""

from __future__ import annotations

import pytest

from tui.core.console.complete import Completion, complete

HOSTS = ("controller-0", "controller-1", "controller-2", "worker-0")
GROUPS = ("all", "controllers", "workers", "none")
WORDS = ("name", "ip", "ETCD_NAME", "INTERNAL_IP")


def _tab(line: str, cursor: int | None = None) -> Completion:
    return complete(line, len(line) if cursor is None else cursor, hosts=HOSTS,
                    groups=GROUPS, placeholders=WORDS)


@pytest.mark.parametrize(("line", "expected"), [
    ("@co", Completion("@controllers", 12)),
    ("@w", Completion("@workers", 8)),
    ("@n", Completion("@none", 5)),
    ("@-w", Completion("@-worker-0", 10)),
    ("-wo", Completion("-worker-0", 9)),
    ("+controller-2", Completion("+controller-2", 13)),  # already whole: nothing to add
    ("echo {na", Completion("echo {name}", 11)),
    ("echo {I", Completion("echo {INTERNAL_IP}", 18)),
    ("echo -w", Completion("echo -w", 7)),               # an option of a command: left alone
    ("ls /etc/ku", Completion("ls /etc/ku", 10)),        # file names: nothing (never focus)
    ("", Completion("", 0)),
])
def test_one_candidate_or_none(line: str, expected: Completion) -> None:
    assert _tab(line) == expected


def test_several_candidates_complete_the_common_prefix_and_are_listed() -> None:
    result = _tab("@+con")
    assert result.line == "@+controller-"
    assert result.candidates == ("@+controller-0", "@+controller-1", "@+controller-2")
    assert _tab("c").line == "controller-"
    assert _tab("@controllers,-con").line == "@controllers,-controller-"


def test_the_word_before_the_cursor_is_completed_and_the_rest_kept() -> None:
    assert _tab("echo {na} done", cursor=8) == Completion("echo {name} done", 11)
    assert _tab("@co,+worker-0", cursor=3) == Completion("@controllers,+worker-0", 12)


def test_gather_normalises_each_hosts_own_values() -> None:
    from tui.core.gather import normalise

    values = {"name": "controller-1", "ip": "10.10.0.11", "ETCD_NAME": "controller-1",
              "X": "1"}
    text = "controller-1.lab 10.10.0.11:2379 pid 1\n"
    assert normalise(text, values) == "{name}.lab {ip}:2379 pid 1\n"
    assert normalise("10.10.0.111\n", values) == "{ip}1\n"  # longest first, plain text
    assert normalise("nothing here\n", values) == "nothing here\n"
