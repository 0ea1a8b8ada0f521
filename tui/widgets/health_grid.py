"""HealthGrid: rows (controllers, the VIP, the hypervisor, the DNS server) x probes.

The table is built once from the poller's cells; after that only the cells whose probe
reported change, by key (``DataTable.update_cell``), never a rebuild.  A cell shows the
probe's state with its rise/fall counter and the last latency.  The second column is the
row's summary (``✔ 11/11``: probes UP and ok, of all), the third a latency sparkline of
the row's main probe (``readyz`` for a controller, ``vip`` for the VIP, ``ssh`` for the
hypervisor, ``dns`` for the DNS server).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.widgets import DataTable

from tui.core.health.history import Sample
from tui.core.health.model import Kind, Status
from tui.core.health.poller import Cell
from tui.core.health.report import CellSnapshot
from tui.core.health.states import State

__all__ = ["SPARK_WIDTH", "HealthGrid", "cell_text", "latency_text", "sparkline"]

LABELS = {
    Kind.SSH: "ssh", Kind.ETCD_HEALTH: "etcd", Kind.ETCD_STATUS: "etcd-st",
    Kind.LIVEZ: "livez", Kind.READYZ: "readyz", Kind.NGINX: "nginx",
    Kind.SCHEDULER: "sched", Kind.CONTROLLER_MANAGER: "ctl-mgr", Kind.CERT_API: "crt:6443",
    Kind.CERT_ETCD: "crt:2379", Kind.DNS_HOST: "dns", Kind.VIP_ADDRESS: "vip",
    Kind.VIP_NAME: "vip-name", Kind.DNS_API: "dns-api", Kind.VIP_RULES: "rules",
}
"""Column headers (short: 80 columns hold the host, the sparkline and five probes)."""
MAIN = (Kind.READYZ, Kind.VIP_ADDRESS, Kind.SSH, Kind.DNS_HOST)
"""The probe whose latency a row's sparkline shows (the first the row has)."""
ROW_LABELS = {"vip": "VIP", "dns": "DNS server"}
SPARK_WIDTH = 12
FIRST_PROBE_COLUMN = 3
"""host, ok, latency, then the probes."""
CELL_WIDTH = 7
"""Columns are at least this wide: ``✔ 999ms``, ``✖ DOWN``, ``✖ ↓2/3``, ``↑1/2``,
``! 6/18`` (requests through the VIP that failed)."""
BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_COLUMN = "latency"
HOST_COLUMN = "host"
ROW_COLUMN = "ok"
"""The row's own summary (clean probes of all): readable even when 80 columns cut the
probe columns off."""


def latency_text(seconds: float | None) -> str:
    """``7ms``, ``<1ms``, ``1.2s`` (empty for None)."""
    if seconds is None:
        return ""
    if seconds < 0.001:
        return "<1ms"
    if seconds < 1.0:
        return f"{seconds * 1000:.0f}ms"
    return f"{seconds:.1f}s"


def cell_text(cell: CellSnapshot) -> Text:
    """A grid cell: state glyph, rise/fall counter or latency, coloured by health."""
    outcome = cell.outcome
    if outcome is None:
        return Text("…", style="dim")
    latency = latency_text(outcome.latency)
    if cell.state is State.DOWN:
        if cell.counter:  # passing again, on its way UP
            return Text(f"↑{cell.counter.split()[0]}", style="yellow")
        return Text("✖ DOWN", style="bold red")
    if cell.counter:  # failing, on its way DOWN
        return Text(f"✖ ↓{cell.counter.split()[0]}", style="bold yellow")
    if outcome.status is Status.WARN:
        failed, requests = outcome.facts.get("failed"), outcome.facts.get("requests")
        if isinstance(failed, int) and isinstance(requests, int) and failed:
            return Text(f"! {failed}/{requests}", style="yellow")  # through the VIP
        return Text(f"! {latency}".strip(), style="yellow")
    return Text(f"✔ {latency}".strip(), style="green")


def sparkline(samples: Sequence[Sample], width: int = SPARK_WIDTH) -> Text:
    """The last ``width`` latencies as block characters (``×`` where a run failed),
    scaled from the smallest to the largest shown."""
    shown = list(samples)[-width:]
    values = [s.latency for s in shown if s.latency is not None]
    text = Text()
    if not shown:
        return Text("·" * 3, style="dim")
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    for sample in shown:
        if sample.latency is None:
            text.append("×", style="bold red")
            continue
        span = high - low
        level = 0 if span <= 0 or math.isnan(span) else \
            round((sample.latency - low) / span * (len(BLOCKS) - 1))
        text.append(BLOCKS[level], style="yellow" if sample.status is Status.WARN else "cyan")
    return text


class HealthGrid(DataTable[Text]):
    """Every probe's cell, updated in place (see the module docstring)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="cell", zebra_stripes=True,
                         fixed_columns=FIRST_PROBE_COLUMN)
        self.rows_of: dict[str, list[str]] = {}
        """Row -> the probe keys in it."""
        self.main: dict[str, str] = {}
        """Row -> the key of its sparkline's probe."""
        self.kinds: list[Kind] = []
        self.cells: dict[str, Cell] = {}

    def build(self, cells: Iterable[Cell]) -> None:
        """Columns and rows for ``cells`` (once; later changes go through :meth:`refresh_cells`)."""
        cells = list(cells)
        self.kinds = [k for k in Kind if any(c.probe.kind is k for c in cells)]
        self.cells = {c.probe.key: c for c in cells}
        self.add_column(HOST_COLUMN, key=HOST_COLUMN)
        self.add_column(ROW_COLUMN, key=ROW_COLUMN, width=CELL_WIDTH)
        self.add_column(SPARK_COLUMN, key=SPARK_COLUMN, width=SPARK_WIDTH)
        for kind in self.kinds:
            self.add_column(LABELS[kind], key=kind.value, width=max(len(LABELS[kind]),
                                                                    CELL_WIDTH))
        for cell in cells:
            self.rows_of.setdefault(cell.probe.row, []).append(cell.probe.key)
        by_key = {c.probe.key: c for c in cells}
        for row, keys in self.rows_of.items():
            kinds = {by_key[k].probe.kind: k for k in keys}
            self.main[row] = next((kinds[k] for k in MAIN if k in kinds), keys[0])
            values = [Text(ROW_LABELS.get(row, row), style="bold"), self.row_text(row),
                      sparkline(by_key[self.main[row]].history.samples())]
            values += [cell_text(by_key[kinds[kind]].snapshot()) if kind in kinds
                       else Text("") for kind in self.kinds]
            self.add_row(*values, key=row)
        if self.kinds:
            self.move_cursor(row=0, column=FIRST_PROBE_COLUMN)

    def row_text(self, row: str) -> Text:
        """``✔ 11/11`` (every probe UP and ok), ``! 10/11``, ``✖ 6/11`` (one is DOWN)."""
        snaps = [self.cells[k].snapshot() for k in self.rows_of[row]]
        if any(s.outcome is None for s in snaps):
            return Text("…", style="dim")
        good = sum(1 for s in snaps if s.clean)
        if any(s.state is State.DOWN for s in snaps):
            return Text(f"✖ {good}/{len(snaps)}", style="bold red")
        if good < len(snaps):
            return Text(f"! {good}/{len(snaps)}", style="yellow")
        return Text(f"✔ {good}/{len(snaps)}", style="green")

    def refresh_cells(self, cells: Iterable[Cell]) -> None:
        """Update the cells of ``cells``, their rows' summaries and sparklines, by key."""
        rows = set()
        for cell in cells:
            probe = cell.probe
            rows.add(probe.row)
            self.update_cell(probe.row, probe.kind.value, cell_text(cell.snapshot()))
            if self.main.get(probe.row) == probe.key:
                self.update_cell(probe.row, SPARK_COLUMN, sparkline(cell.history.samples()))
        for row in rows:
            self.update_cell(row, ROW_COLUMN, self.row_text(row))

    def key_at_cursor(self) -> str | None:
        """The probe key under the cursor (None on the host/latency columns or a gap)."""
        if not self.row_count:
            return None
        row_key, column_key = self.coordinate_to_cell_key(self.cursor_coordinate)
        row, column = str(row_key.value), str(column_key.value)
        key = f"{row}/{column}"
        return key if key in self.rows_of.get(row, ()) else None
