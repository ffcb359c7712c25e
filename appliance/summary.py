"""What a plugin shows on the home page at a glance (the `appliance_home_summary` hook): a
card of a few figures, a small table and small charts, all plain data the host renders the
same way for every plugin (home/summary.html). The numbers are always written out in the
page; a chart is drawn over them in the browser from the same data (static/charts.js), so
the page reads the same without it."""

from dataclasses import dataclass, field
from datetime import datetime

#: How a chart is drawn: "lines" over runs (x: when each ran), "bars" over categories.
KINDS = ("lines", "bars")
#: The tones a figure or cell may have: the .badge colours of app.css.
TONES = ("", "ok", "warn", "bad")


@dataclass(frozen=True)
class Figure:
    """One number or word, with its label; a tone makes it a coloured badge."""

    label: str
    value: str | int
    tone: str = ""


@dataclass(frozen=True)
class Chart:
    """A small chart: its label says what it shows (its caption and accessible name),
    `x` names each point (a run's time, a licence type), `series` maps a name to one value
    a point. `unit` follows the values in the table ("%")."""

    label: str
    kind: str
    x: list[str]
    series: dict[str, list[float]]
    unit: str = ""

    def data(self) -> dict:
        """What static/charts.js draws (a data-chart attribute): the series as [name,
        values] pairs, in their order (a JSON object's keys may be sorted)."""
        return {"kind": self.kind, "x": self.x, "series": [[k, v] for k, v in self.series.items()],
                "unit": self.unit}


@dataclass
class Summary:
    """One card of the home page. `rows` are lists of cells (text, numbers, or a Figure for
    a badge), under `columns`; `link` is (text, url) to the page with the rest; a `wide`
    card takes the page's whole width."""

    title: str
    order: int = 100
    figures: list[Figure] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    link: tuple[str, str] | None = None
    empty: str = ""  # what the card says when it has no rows
    wide: bool = False  # the whole width of the page (a table of many columns)


def when(t: datetime | None, never: str = "never") -> str:
    """A naive UTC time as the home page writes it."""
    return f"{t:%Y-%m-%d %H:%M} UTC" if t else never
