"""The broadcast bar against real lab shells: pasting KTHW's multi-line blocks (issue 12,
item 1) and Tab (item 8). The files on every host are checked, not only the screen."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual import events
from textual.pilot import Pilot

from tests.integration.test_console_app import HOSTS, _finished, _screen, _until
from tests.integration.test_console_app import console as console  # the fixture
from tui.app import HardwayApp, create_app
from tui.core.inventory.load import load_inventory
from tui.core.workbench import Workbench
from tui.lab.lab import LabRunner
from tui.widgets.broadcast_bar import BroadcastBar
from tui.widgets.host_pane import HostPane

# KTHW's shape (in the home directory: the test lab is not confined): an unquoted
# heredoc piped into sudo tee, with a shell expansion inside, a
# line that looks like a placeholder, continuation backslashes, and a command after it.
BLOCK = "\n".join([
    "cat <<EOF | sudo tee paste-test.conf",
    "[Unit]",
    "Description=pasted on $(hostname)",
    "Documentation=https://github.com/coreos",
    "",
    "[Service]",
    "ExecStart=/usr/local/bin/etcd \\\\",
    "  --name {name} \\\\",
    "  --data-dir=/var/lib/etcd",
    "Restart=on-failure",
    "EOF",
    "sudo chmod 600 paste-test.conf",
    "",
])


def _paste(app: HardwayApp, text: str) -> None:
    """What a terminal's bracketed paste delivers to the focused bar."""
    bar = _screen(app).query_one(BroadcastBar).input
    bar.focus()
    bar.post_message(events.Paste(text))


async def test_a_pasted_heredoc_waits_for_enter_then_reaches_every_host_whole(
        console: tuple[HardwayApp, Pilot[Any]], lab_runner: LabRunner) -> None:
    app, pilot = console
    files = {h: lab_runner.lab.host_root(h) / "root/paste-test.conf" for h in HOSTS}
    for path in files.values():
        path.unlink(missing_ok=True)
    _paste(app, BLOCK)
    bar = _screen(app).query_one(BroadcastBar)
    await _until(pilot, lambda: bar.input.pending is not None)
    assert bar.input.pending == "12 pasted lines to 3 hosts · Enter sends · Esc drops"
    assert bar.has_class("-pending") and bar.input.value == ""
    await pilot.pause(0.3)
    assert not any(p.exists() for p in files.values())  # nothing sent before Enter
    await pilot.press("x")  # other keys do nothing while it waits
    assert bar.input.value == "" and bar.input.pending is not None
    await pilot.press("enter")
    report = await _finished(pilot)
    assert {row.host for row in report.rows if row.status == 0} == set(HOSTS), report.rows
    for host, path in files.items():
        text = path.read_text()
        assert text.splitlines() == [
            "[Unit]", f"Description=pasted on {host}",
            "Documentation=https://github.com/coreos", "", "[Service]",
            "ExecStart=/usr/local/bin/etcd \\", "  --name {name} \\",
            "  --data-dir=/var/lib/etcd", "Restart=on-failure"], text
        assert path.stat().st_mode & 0o777 == 0o600
        path.unlink()
    assert bar.input.pending is None and not bar.has_class("-pending")


async def test_esc_drops_a_pasted_block_and_nothing_is_sent(
        console: tuple[HardwayApp, Pilot[Any]], lab_runner: LabRunner) -> None:
    app, pilot = console
    marker = {h: lab_runner.lab.host_root(h) / "root/dropped-paste" for h in HOSTS}
    _paste(app, "touch dropped-paste\necho second line\n")
    bar = _screen(app).query_one(BroadcastBar)
    await _until(pilot, lambda: bar.input.pending is not None)
    await pilot.press("escape")
    await _until(pilot, lambda: bar.input.pending is None)
    await pilot.press(*"echo after", "enter")
    report = await _finished(pilot)
    assert {b.lines for b in report.blocks} == {("after",)}
    assert not any(p.exists() for p in marker.values())


async def test_one_pasted_line_is_inserted_for_editing(
        console: tuple[HardwayApp, Pilot[Any]]) -> None:
    app, pilot = console
    _paste(app, "echo one line\n")
    bar = _screen(app).query_one(BroadcastBar)
    await _until(pilot, lambda: bar.input.value == "echo one line")
    assert bar.input.pending is None


async def test_a_paste_in_type_through_goes_to_every_shell_at_once(
        console: tuple[HardwayApp, Pilot[Any]], lab_runner: LabRunner) -> None:
    app, pilot = console
    files = {h: lab_runner.lab.host_root(h) / "root/through-paste" for h in HOSTS}
    await pilot.press("f4")
    _paste(app, "cat > through-paste <<'EOF'\nline {name} $X\nEOF\n")
    # bash asked for bracketed paste: the block sits on the line, whole, until Enter
    await pilot.pause(0.5)
    assert not any(p.exists() for p in files.values())
    await pilot.press("enter")
    await _until(pilot, lambda: all(p.exists() and p.read_text() for p in files.values()))
    for path in files.values():
        assert path.read_text() == "line {name} $X\n"
        path.unlink()
    await pilot.press("f4")


async def test_tab_in_the_bar_completes_and_never_leaves_the_bar(
        console: tuple[HardwayApp, Pilot[Any]]) -> None:
    """Issue 12 #8: Tab used to move the focus to controller-0's pane, so the rest of the
    line ran on that host only."""
    app, pilot = console
    bar = _screen(app).query_one(BroadcastBar).input
    bar.focus()
    await pilot.press(*"@-controller-")
    await pilot.press("tab")
    assert app.focused is bar
    assert bar.value == "@-controller-"  # three candidates: listed, the prefix kept
    await pilot.press("1", "tab")
    assert bar.value == "@-controller-1" and app.focused is bar
    await pilot.press("enter")
    await _until(pilot, lambda: "controller-1" not in _screen(app).console.broadcast_set.members)
    await pilot.press(*"echo {na", "tab", "enter")
    report = await _finished(pilot)
    assert [(b.hosts, b.lines) for b in report.blocks] == [
        ((h,), (h,)) for h in HOSTS if h != "controller-1"]
    await pilot.press(*"@all", "enter")


async def test_gather_groups_outputs_that_differ_only_by_the_hosts_own_values(
        console: tuple[HardwayApp, Pilot[Any]]) -> None:
    """Issue 12 #13: `hostname`-like output is one block, normalised; `r` shows it raw."""
    from textual.widgets import Static

    from tui.widgets.gather_view import GatherScreen

    app, pilot = console
    bar = _screen(app).query_one(BroadcastBar).input
    bar.focus()
    await pilot.press(*"echo serving $ETCD_NAME on {ip}:2379", "enter")
    await _finished(pilot)
    normalised = _screen(app).console.gather(normalised=True)
    assert normalised.summary == "identical on controller-[0-2] (3)", normalised.summary
    assert normalised.blocks[0].lines == ("serving {name} on {ip}:2379",)
    assert _screen(app).console.gather().summary.startswith("3 different results")
    await pilot.press("f3")
    await _until(pilot, lambda: isinstance(app.screen, GatherScreen))
    body = app.screen.query_one("#gather-body", Static)
    assert "identical on controller-[0-2] (3)" in str(app.screen.query_one("VerticalScroll")
                                                       .border_title)
    await pilot.press("r")
    await pilot.pause()
    assert "3 different results" in str(app.screen.query_one("VerticalScroll").border_title)
    assert body is app.screen.query_one("#gather-body", Static)
    await pilot.press("escape")


async def test_readline_keys_reach_the_shell_and_ctrl_g_is_the_only_escape(
        console: tuple[HardwayApp, Pilot[Any]], lab_runner: LabRunner) -> None:
    """Issue 12 #7: ctrl+e, ctrl+p and ctrl+o in a pane are the shell's (end of line,
    previous history, operate-and-get-next); the app's screens are behind ctrl+g."""
    from tui.widgets.host_pane import HostPane

    app, pilot = console
    screen = _screen(app)
    pane = screen.query_one("#pane-controller-0", HostPane)
    pane.view.focus()
    await pilot.pause()
    marker = lab_runner.lab.host_root("controller-0") / "root/readline-keys"
    marker.unlink(missing_ok=True)
    # type "touch readline-key", go to the start (ctrl+a), end (ctrl+e), add "s", Enter
    await pilot.press(*"touch readline-key", "ctrl+a", "ctrl+e", "s", "enter")
    await _until(pilot, marker.exists)
    marker.unlink()
    await pilot.press("ctrl+p", "enter")  # previous history: the same command again
    await _until(pilot, marker.exists)
    marker.unlink()
    assert app.current_mode == "console" and app.focused is pane.view
    await pilot.press("ctrl+g", "o")
    await _until(pilot, lambda: app.current_mode == "hosts")
    await pilot.press("escape")
    await _until(pilot, lambda: app.current_mode == "console")
    await pilot.press("ctrl+g", "x")  # nothing, and says what would have worked
    assert app.current_mode == "console"


async def test_the_header_counts_connections_and_shells_apart(
        console: tuple[HardwayApp, Pilot[Any]]) -> None:
    """Issue 12 #17: a shell that exited left the header at "3/3 connected" as if all
    were well; connections and shells are two states, both shown."""
    app, pilot = console
    assert app.sub_title.startswith("3/3 connected") and "shells" not in app.sub_title
    bar = _screen(app).query_one(BroadcastBar).input
    bar.focus()
    await pilot.press(*"@controller-1", "enter", *"exit", "enter")
    await _until(pilot, lambda: "2/3 shells open" in app.sub_title)
    assert app.sub_title.startswith("3/3 connected")
    await pilot.press(*"@all", "enter")


async def test_search_steps_with_n_and_N_and_esc_returns_to_the_tail(
        console: tuple[HardwayApp, Pilot[Any]], lab_runner: LabRunner) -> None:
    """Issue 12 #14; and outside a search n and Esc are the shell's and the bar's keys."""
    from tui.widgets.host_pane import HostPane

    app, pilot = console
    screen = _screen(app)
    bar = screen.query_one(BroadcastBar).input
    bar.focus()
    bar.value = ("for i in $(seq 1 200); do [ $((i % 50)) = 0 ] && echo $i mark "
                 "|| echo row $i; done")
    await pilot.press("enter")
    await _finished(pilot)
    panes = [screen.query_one(f"#pane-{h}", HostPane) for h in HOSTS]
    await pilot.press("f10", *"0 mark", "enter")  # 4 hits, 50 lines apart
    await _until(pilot, lambda: all(not p.view.following for p in panes))
    last = [p.view.scroll_y for p in panes]
    await pilot.press("N")
    await _until(pilot, lambda: all(p.view.scroll_y < y for p, y in zip(panes, last, strict=True)))
    assert bar.value == ""  # the search took N, the bar did not
    await pilot.press("n")
    await _until(pilot, lambda: [p.view.scroll_y for p in panes] == last)
    await pilot.press("escape")
    await _until(pilot, lambda: all(p.view.following for p in panes))
    assert not screen._hits
    await pilot.press("n")  # no search any more: n is typed into the bar
    await _until(pilot, lambda: bar.value == "n")
    bar.value = ""


async def test_half_typed_text_in_a_pane_is_not_merged_into_a_broadcast(
        console: tuple[HardwayApp, Pilot[Any]], lab_runner: LabRunner) -> None:
    """Issue 12 #9: `rm -rf /tmp/x` half-typed in controller-1's pane, then `echo hi`
    from the bar, ran `rm -rf /tmp/xecho hi` there. Now the first Enter warns and keeps
    the line; the second clears that shell's line (^U) and sends."""
    from tui.widgets.host_pane import HostPane

    app, pilot = console
    screen = _screen(app)
    pane = screen.query_one("#pane-controller-1", HostPane)
    pane.view.focus()
    await pilot.pause()
    await pilot.press(*"touch half-")
    bar = screen.query_one(BroadcastBar).input
    bar.focus()
    await pilot.press(*"touch whole-{name}", "enter")
    await pilot.pause(0.3)
    assert bar.value == "touch whole-{name}"  # kept: nothing sent yet
    assert not screen.console.broadcasts or not screen.console.broadcasts[-1].line.startswith(
        "touch whole")
    await pilot.press("enter")
    report = await _finished(pilot)
    assert {row.host for row in report.rows if row.status == 0} == set(HOSTS)
    home = lab_runner.lab.host_root("controller-1") / "root"
    assert (home / "whole-controller-1").exists()
    assert not list(home.glob("half-*"))
    for host in HOSTS:
        (lab_runner.lab.host_root(host) / "root" / f"whole-{host}").unlink()


LONG = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" * 2


async def test_a_long_line_wraps_where_the_pane_wraps_at_every_size(
        console: tuple[HardwayApp, Pilot[Any]]) -> None:
    """Issue 12 #5: the remote PTY's columns equal the pane terminal's columns, in every
    tiling, after every resize and zoomed; a long echo loses no character at a wrap."""
    from tui.widgets.host_pane import HostPane

    app, pilot = console
    screen = _screen(app)
    pane = screen.query_one("#pane-controller-0", HostPane)
    # 200x50 first: the size the shells were opened at, before any resize
    for size, zoom in (((200, 50), False), ((160, 45), False), ((80, 24), False),
                       ((120, 40), True), ((97, 31), False)):
        await pilot.resize_terminal(*size)
        await pilot.pause(0.2)
        if zoom:
            pane.view.focus()
            await pilot.press("f6")
            await pilot.pause(0.2)
        view = pane.view
        await _until(pilot, lambda v=view: v.columns > 0)
        pane.view.focus()
        await pilot.press("ctrl+l")
        tag = f"{size[0]}x{size[1]}"
        screen.console.type_to("controller-0", f"stty size; echo {tag}-{LONG}\r")  # keystrokes
        rows, cols = view.terminal.rows, view.columns
        assert view.terminal.columns == cols

        def shown(v: Any = view) -> str:
            return str(v.terminal.text())
        try:
            await _until(pilot, lambda w=f"{rows} {cols}": w in shown(), timeout=5)
        except AssertionError:
            raise AssertionError(f"{tag}: pane {rows}x{cols}, shell says:\n{shown()}") from None
        # the typed echo and its output: both rows of text rejoin to the whole string
        await _until(pilot, lambda w=f"{tag}-{LONG}": shown().replace("\n", "").count(w) >= 2,
                     timeout=5)
        text = shown()
        typed = f"root@controller-0:# stty size; echo {tag}-{LONG}"
        count = -(-len(typed) // cols) + 1 + -(-len(f"{tag}-{LONG}") // cols) + 1
        latest = text.splitlines()[-count:]  # rows from before the resize keep their width
        assert all(len(line) <= cols for line in latest), text
        if zoom:
            await pilot.press("f6")
    await pilot.resize_terminal(200, 50)


async def test_no_key_is_lost_after_search_and_zoom(
        console: tuple[HardwayApp, Pilot[Any]], lab_runner: LabRunner) -> None:
    """Issue 12 #6: after F10 (search) then F6 (zoom), the first key typed into the pane
    vanished (`seq 1 3` arrived as `eq 1 3`)."""
    from tui.widgets.host_pane import HostPane

    app, pilot = console
    screen = _screen(app)
    pane = screen.query_one("#pane-controller-1", HostPane)
    marker = lab_runner.lab.host_root("controller-1") / "root/no-key-lost"
    marker.unlink(missing_ok=True)
    bar = screen.query_one(BroadcastBar).input
    for in_bar, opening in ((False, ("f10", "escape")),
                            (False, ("f10", *"root", "enter", "escape")),
                            (True, ("f10", *"root", "enter", "f2", "f2"))):
        (bar if in_bar else pane.view).focus()
        await pilot.pause()
        await pilot.press(*opening)
        assert app.focused is pane.view, app.focused
        await pilot.press("f6")
        await pilot.press(*"touch no-key-lost", "enter")
        try:
            await _until(pilot, marker.exists)
        except AssertionError:
            raise AssertionError(pane.view.terminal.text()[-300:]) from None
        marker.unlink()
        await pilot.press("f6")
        assert not screen.has_class("-zoom")


async def test_quitting_with_live_sessions_asks_once(
        console: tuple[HardwayApp, Pilot[Any]]) -> None:
    """Issue 12 #16: ctrl+q (and q on the hosts table) ask before closing live sessions;
    Esc stays, q / Enter / ctrl+q again quits."""
    from tui.widgets.quit_modal import QuitModal

    app, pilot = console
    await pilot.press("ctrl+q")
    await _until(pilot, lambda: isinstance(app.screen, QuitModal))
    modal = app.screen
    assert isinstance(modal, QuitModal) and modal.live == list(HOSTS)
    await pilot.press("escape")
    await _until(pilot, lambda: not isinstance(app.screen, QuitModal))
    assert app.is_running and app.workbench.live_hosts() == list(HOSTS)
    await pilot.press("ctrl+g", "o")  # the hosts table: q asks too
    await _until(pilot, lambda: app.current_mode == "hosts")
    await pilot.press("q")
    await _until(pilot, lambda: isinstance(app.screen, QuitModal))
    await pilot.press("n")
    await _until(pilot, lambda: not isinstance(app.screen, QuitModal))
    await pilot.press("ctrl+q", "enter")
    await _until(pilot, lambda: not app.is_running)
    assert app.return_code == 0


async def test_the_key_right_after_ctrl_g_is_the_apps_even_when_typed_fast(
        console: tuple[HardwayApp, Pilot[Any]]) -> None:
    """tmux send-keys C-g '?' (or a fast typist): the second key arrived before the
    prefix's binding had run and went into the bar as text."""
    app, pilot = console
    bar = _screen(app).query_one(BroadcastBar).input
    bar.focus()
    await pilot.pause()
    # as the input driver delivers them: straight after each other
    await app._post_message(events.Key("ctrl+g", None))
    await app._post_message(events.Key("question_mark", "?"))
    await pilot.pause(0.2)
    assert bar.value == ""
    from tui.widgets.key_help import KeyHelpModal

    assert isinstance(app.screen, KeyHelpModal)
    await pilot.press("escape")


async def test_ctrl_r_searches_the_bar_history(
        console: tuple[HardwayApp, Pilot[Any]]) -> None:
    """Issue 12 #8: ctrl+r in the bar finds an earlier line as you type; Enter takes it
    into the bar to edit or send, Esc leaves the bar as it was."""
    from textual.widgets import OptionList

    from tui.widgets.history_modal import HistorySearchModal

    app, pilot = console
    bar = _screen(app).query_one(BroadcastBar).input
    for line in ("echo first-etcd", "systemctl status etcd --no-pager", "echo last"):
        bar.focus()
        bar.value = line
        await pilot.press("enter")
        await _finished(pilot)
    bar.value = "draft"
    await pilot.press("ctrl+r")
    await _until(pilot, lambda: isinstance(app.screen, HistorySearchModal))
    await pilot.press("escape")
    await _until(pilot, lambda: not isinstance(app.screen, HistorySearchModal))
    assert bar.value == "draft" and app.focused is bar
    bar.value = ""
    await pilot.press("ctrl+r")
    await _until(pilot, lambda: isinstance(app.screen, HistorySearchModal))
    await pilot.press(*"ETCD")  # case-insensitive, newest first
    matches = app.screen.query_one(OptionList)
    await _until(pilot, lambda: matches.option_count == 2)
    assert str(matches.get_option_at_index(0).prompt) == "systemctl status etcd --no-pager"
    await pilot.press("ctrl+r", "enter")  # the older one
    await _until(pilot, lambda: bar.value == "echo first-etcd")
    assert bar.cursor_position == len(bar.value)
    bar.value = ""


async def test_a_local_script_and_a_local_file_reach_every_host_in_the_set(
        console: tuple[HardwayApp, Pilot[Any]], lab_runner: LabRunner, tmp_path: Any) -> None:
    """Issue 12 #1: a local script run on the set (bash -s, whole, placeholders on
    request) and a local file copied to a path on each host, from the palette's modal."""
    from textual.widgets import Checkbox, Input

    from tui.widgets.send_file_modal import SendFileModal

    app, pilot = console
    screen = _screen(app)
    script = tmp_path / "step.sh"
    script.write_text('set -e\ncat > sent-by-script <<EOF\n{name} $HOST_NAME\nEOF\n'
                      'chmod 600 sent-by-script\n')
    homes = {h: lab_runner.lab.host_root(h) / "root" for h in HOSTS}
    for home in homes.values():
        (home / "sent-by-script").unlink(missing_ok=True)
    await app.run_action("screen.send_file(False)", screen)
    await _until(pilot, lambda: isinstance(app.screen, SendFileModal)
                 and bool(app.screen.query("#send-local")))
    modal = app.screen
    modal.query_one("#send-local", Input).value = str(script)
    modal.query_one("#send-substitute", Checkbox).value = True
    await pilot.click("#send-go")
    report = await _finished(pilot)
    assert {row.host for row in report.rows if row.status == 0} == set(HOSTS), report.rows
    for host, home in homes.items():
        made = home / "sent-by-script"
        assert made.read_text() == f"{host} {host}\n" and made.stat().st_mode & 0o777 == 0o600
        made.unlink()

    conf = tmp_path / "member.conf"
    conf.write_text("ETCD_NAME={name}\nINTERNAL_IP={ip}\n")
    await app.run_action("screen.send_file(True)", screen)
    await _until(pilot, lambda: isinstance(app.screen, SendFileModal)
                 and bool(app.screen.query("#send-local")))
    modal = app.screen
    modal.query_one("#send-local", Input).value = str(conf)
    modal.query_one("#send-remote", Input).value = "/etc/hardway-send/{name}.conf"
    modal.query_one("#send-substitute", Checkbox).value = True
    await pilot.click("#send-go")
    inventory = app.workbench.inventory
    targets = {h: lab_runner.lab.host_root(h) / f"etc/hardway-send/{h}.conf" for h in HOSTS}
    await _until(pilot, lambda: all(p.exists() for p in targets.values()))
    for host, path in targets.items():
        assert path.read_text() == (f"ETCD_NAME={host}\n"
                                    f"INTERNAL_IP={inventory.host(host).address}\n")
    # a file that cannot be sent: one clear message, nothing sent, the app carries on
    await app.run_action("screen.send_file(False)", screen)
    await _until(pilot, lambda: isinstance(app.screen, SendFileModal)
                 and bool(app.screen.query("#send-local")))
    app.screen.query_one("#send-local", Input).value = str(tmp_path / "nope.sh")
    await pilot.click("#send-go")
    await _until(pilot, lambda: any("nope.sh" in str(n.message)
                                    for n in app._notifications))


async def test_tab_completes_file_names_from_the_first_host_of_the_set(
        console: tuple[HardwayApp, Pilot[Any]], lab_runner: LabRunner) -> None:
    """Issue 12 #8: after the command word, Tab completes a file name as the first host
    of the set spells it (listed over SFTP, keys live meanwhile)."""
    app, pilot = console
    first = lab_runner.lab.host_root("controller-0")
    (first / "etc").mkdir(parents=True, exist_ok=True)
    (first / "etc/tabtest-unique.conf").write_text("x")
    home = first / "root/tabdir"
    (home / "alphabet").mkdir(parents=True, exist_ok=True)
    (home / "alpha.conf").write_text("x")
    (home / "my file").write_text("x")
    (home / ".hidden").write_text("x")
    bar = _screen(app).query_one(BroadcastBar).input
    bar.focus()
    await pilot.press(*"cat /etc/tabtest-u", "tab")
    await _until(pilot, lambda: bar.value == "cat /etc/tabtest-unique.conf ")
    assert bar.cursor_position == len(bar.value) and app.focused is bar
    bar.value = ""
    await pilot.press(*"ls tabdir/al", "tab")
    await _until(pilot, lambda: bar.value == "ls tabdir/alpha")
    await pilot.press("b", "tab")
    await _until(pilot, lambda: bar.value == "ls tabdir/alphabet/")
    bar.value = ""
    await pilot.press(*"wc -c tabdir/my", "tab")
    await _until(pilot, lambda: bar.value == "wc -c tabdir/my\\ file ")
    await pilot.press("enter")
    report = await _finished(pilot)
    assert report.rows[0].status == 0  # the escaped name is the file the shell finds
    bar.value = ""
    await pilot.press(*"cat tabdir/", "tab")  # dot files only when asked for
    await pilot.pause(0.5)
    assert bar.value == "cat tabdir/"
    await pilot.press(*"cat /nonexistent-dir/x", "tab")
    await pilot.pause(0.5)
    assert bar.value == "cat tabdir/cat /nonexistent-dir/x"  # unchanged, a warning shown
    bar.value = ""
    await pilot.press(*"ls", "tab")  # the command word: nothing to list
    await pilot.pause(0.3)
    assert bar.value == "ls" and app.focused is bar
    bar.value = ""


async def test_key_help_lists_this_screens_keys_the_prefix_and_the_bar_syntax(
        console: tuple[HardwayApp, Pilot[Any]]) -> None:
    """Issue 12 #10: ctrl+g ? (and ? where no pane or bar takes it) opens a key help
    screen; in the bar ? is a character."""
    from tui.widgets.key_help import KeyHelpModal

    app, pilot = console
    bar = _screen(app).query_one(BroadcastBar).input
    bar.focus()
    await pilot.press("question_mark")
    assert bar.value == "?" and not isinstance(app.screen, KeyHelpModal)
    bar.value = ""
    await pilot.press("ctrl+g", "question_mark")
    await _until(pilot, lambda: isinstance(app.screen, KeyHelpModal))
    help_screen = app.screen
    assert isinstance(help_screen, KeyHelpModal)
    titles = [s.title for s in help_screen.sections]
    assert titles[:2] == ["This screen", "After ctrl+g (the one key a pane does not get)"]
    assert "The broadcast bar" in titles
    rows = {keys: meaning for s in help_screen.sections for keys, meaning in s.rows}
    assert rows["F3"].startswith("Exit codes and outputs")
    assert rows["ctrl+g k"] == "certificates"
    assert "+name -name" in rows
    assert "Delete all to the left" not in rows.values()  # Input's editing keys: noise
    await pilot.press("escape")
    await _until(pilot, lambda: not isinstance(app.screen, KeyHelpModal))
    assert app.focused is bar and bar.value == ""
    await pilot.press("ctrl+g", "o")  # the hosts table: ? alone opens the help
    await _until(pilot, lambda: app.current_mode == "hosts")
    await pilot.press("question_mark")
    await _until(pilot, lambda: isinstance(app.screen, KeyHelpModal))
    assert app.screen.help_title == "hosts table"  # type: ignore[attr-defined]
    await pilot.press("question_mark")
    await _until(pilot, lambda: not isinstance(app.screen, KeyHelpModal))
    await pilot.press("ctrl+g", "c")
    await _until(pilot, lambda: app.current_mode == "console")


async def test_toasts_leave_the_bar_footer_and_pane_borders_visible(
        lab_runner: LabRunner, tmp_path: Path) -> None:
    """Issue 12 #12: at 80x24 a toast covered the bar, the footer and the panes' right
    border, and the transcript toast cut its path; it now sits inside the panes' frame,
    the path whole and written with ~."""
    from textual.widgets._toast import Toast

    from tui.core.paths import shown

    app = create_app(Workbench(load_inventory(lab_runner.lab.inventory_path),
                               host_keys="ask", audit_path=tmp_path / "audit.jsonl"))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = _screen(app)
        await _until(pilot, lambda: all(screen.console.shell(h) is not None for h in HOSTS))
        await pilot.press("f8")
        await _until(pilot, lambda: bool(app.screen.query(Toast)))
        await pilot.pause(0.3)  # laid out
        toast = app.screen.query(Toast).last()
        bar = screen.query_one(BroadcastBar)
        assert toast.region.bottom <= bar.region.y - 1, (toast.region, bar.region)  # border
        assert toast.region.right < app.screen.size.width, toast.region
        folder = next(iter(screen.console.transcripts.values())).parent
        text = " ".join(str(toast.render()).split())
        assert shown(folder) in text, text
        await pilot.press("f8")


async def test_type_through_and_pane_lines_are_audited_per_host(
        console: tuple[HardwayApp, Pilot[Any]], tmp_path: Path) -> None:
    """Issue 18: lines typed by type-through (F4) or into a focused pane are one audit
    record per host that accepted them, with the exit status (0 of 8 were before)."""
    import json

    from tui.widgets.host_pane import HostPane

    app, pilot = console
    audit = tmp_path / "audit.jsonl"
    await pilot.press("f4", *"echo through-$HOST_NAME", "enter", "f4")

    def typed() -> list[dict[str, Any]]:
        if not audit.exists():
            return []
        return [r for r in map(json.loads, audit.read_text().splitlines()) if r.get("typed")]

    await _until(pilot, lambda: len(typed()) == 3)
    assert sorted((r["host"], r["command"], r["status"]) for r in typed()) == [
        (h, "echo through-$HOST_NAME", 0) for h in HOSTS]
    _screen(app).query_one("#pane-controller-1", HostPane).view.focus()
    await pilot.press(*"ls /nonexistent-typed", "enter")
    await _until(pilot, lambda: len(typed()) == 4)
    assert (typed()[-1]["host"], typed()[-1]["command"], typed()[-1]["status"]) == (
        "controller-1", "ls /nonexistent-typed", 2)
    _screen(app).query_one(BroadcastBar).input.focus()


async def test_a_pasted_block_of_commands_is_one_command_until_its_last_line(
        console: tuple[HardwayApp, Pilot[Any]]) -> None:
    """A block of several commands went to bash line by line: it was recorded finished at
    the first prompt (its output cut) and the next line found the hosts "typed ahead".
    Sent as a terminal pastes (bracketed, since bash asked), it is one command line: one
    prompt, every line's output, the last exit status."""
    app, pilot = console
    _paste(app, "echo one-$HOST_NAME\nsleep 0.3\necho two\nfalse\n")
    bar = _screen(app).query_one(BroadcastBar)
    await _until(pilot, lambda: bar.input.pending is not None)
    await pilot.press("enter")
    report = await _finished(pilot)
    assert {row.host: row.status for row in report.rows} == dict.fromkeys(HOSTS, 1)
    normalised = _screen(app).console.gather(normalised=True)
    assert [b.lines for b in normalised.blocks] == [("one-{name}", "two")], normalised.blocks
    await pilot.press(*"echo after", "enter")
    report = await _finished(pilot)
    assert {row.host: row.status for row in report.rows} == dict.fromkeys(HOSTS, 0)
    assert [b.lines for b in report.blocks] == [("after",)]


async def test_lines_typed_ahead_of_their_enter_stay_lines(
        console: tuple[HardwayApp, Pilot[Any]]) -> None:
    """``@none`` Enter ``+controller-1`` Enter ``echo ...`` Enter arriving at once (a paste
    without brackets, ``tmux send-keys``, a fast typist): each Enter ends its own line.
    Before, Input's Enter binding ran only once the key had bubbled up to the app, after
    the keys behind it were in the bar: one line, ``@none+controller-1echo ...``."""
    app, pilot = console
    screen = _screen(app)
    bar = screen.query_one(BroadcastBar).input
    bar.focus()
    await pilot.pause()
    keys = [events.Key(c, c) for c in "@none"] + [events.Key("enter", "\r")]
    keys += [events.Key(c, c) for c in "+controller-1"] + [events.Key("enter", "\r")]
    keys += [events.Key(c, c) for c in "echo ahead-$((6*7))"] + [events.Key("enter", "\r")]
    # as the driver's thread hands them over: one task per key, none waiting for another
    tasks = [asyncio.ensure_future(app._post_message(key)) for key in keys]
    await asyncio.gather(*tasks)
    pane = screen.query_one("#pane-controller-1", HostPane)
    await _until(pilot, lambda: "ahead-42" in pane.terminal.text())
    assert screen.console.broadcast_set.members == ["controller-1"]
    assert bar.value == ""
    for other in ("controller-0", "controller-2"):
        text = screen.query_one(f"#pane-{other}", HostPane).terminal.text()
        assert "ahead-42" not in text
