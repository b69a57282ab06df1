"""The report's table in the terminal (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from attmask_ray.report.build import Report
from attmask_ray.report.tables import formatted


def print_report(report: Report, console: Console | None = None) -> None:
    """Print the Table 1 rows, notes and where report.md and the plots are."""
    console = console or Console()
    header, body = formatted(report.summary)
    table = Table(title=f"{report.n_trials} trials (mean ± std over seeds)")
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i < len(report.summary.keys) else "right")
    for row in body:
        table.add_row(*row)
    console.print(table)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"report: {report.markdown}")
    for plot in report.plots.values():
        console.print(f"plot:   {plot.path}")
    if report.health is not None:
        for flag in report.health.flags:
            console.print(f"[red]health:[/] {flag}")
        if report.health.plot is not None:
            console.print(f"plot:   {report.health.plot.path}")
