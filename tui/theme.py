"""hardway's Textual theme: calm dark surfaces, state colours that read at a glance."""

from __future__ import annotations

from textual.theme import Theme

HARDWAY_THEME = Theme(
    name="hardway",
    primary="#5fafd7",
    secondary="#87afaf",
    accent="#ffaf5f",
    warning="#e5c07b",
    error="#e06c75",
    success="#98c379",
    foreground="#d0d0d0",
    background="#1c1f24",
    surface="#23272e",
    panel="#2c313a",
    dark=True,
)
