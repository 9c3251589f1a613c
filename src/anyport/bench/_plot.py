"""The PNG plot of an HTTP benchmark: latency (p50, p99) and req/s against concurrency.

Two panels per mode (latency on top, req/s below), at most four modes a row, one colour per server.
matplotlib is not a dependency of anyport: ``plot_available()`` says whether it can be imported,
and ``plot_http`` raises ``PlotUnavailable`` with an install hint when it cannot.

This module imports nothing from anyport, so another interpreter that has matplotlib (the
benchmark's peers environment) can run it by path on a result file:

    python src/anyport/bench/_plot.py RESULTS.json OUT.png

where RESULTS.json holds ``{"title": ..., "points": [{"server", "mode", "concurrency",
"p50_us", "p99_us", "rps"}, ...]}`` (other keys are ignored).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["INSTALL_HINT", "PlotUnavailable", "plot_available", "plot_http"]

#: Modes per row of the figure; each mode is a latency panel above a req/s panel.
_MAX_COLUMNS = 4
INSTALL_HINT = "the plot needs matplotlib, which is not a dependency of anyport: pip install matplotlib"


class PlotUnavailable(RuntimeError):
    """matplotlib cannot be imported here."""


def plot_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def plot_http(points: Sequence[Mapping[str, Any]], path: str, title: str = "") -> str:
    """Write the plot of ``points`` to ``path`` (PNG); returns ``path``.

    Each point: ``server``, ``mode`` (labels), ``concurrency``, and ``p50_us`` / ``p99_us`` /
    ``rps`` (None where the cell has no measurement; such points are left out).
    """
    try:  # imported by name: matplotlib is optional, and not installed where mypy runs
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
        ticker = importlib.import_module("matplotlib.ticker")
    except ImportError as exc:
        raise PlotUnavailable(INSTALL_HINT) from exc
    modes: list[str] = []
    servers: list[str] = []
    for p in points:
        if p["mode"] not in modes:
            modes.append(p["mode"])
        if p["server"] not in servers:
            servers.append(p["server"])
    if not modes:
        raise ValueError("nothing to plot")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ncols = min(_MAX_COLUMNS, len(modes))
    nrows = -(-len(modes) // ncols)
    fig, axes = plt.subplots(2 * nrows, ncols, figsize=(4.2 * ncols, 6.6 * nrows + 0.8), squeeze=False)
    handles: dict[str, Any] = {}
    for k, mode in enumerate(modes):
        row, col = divmod(k, ncols)
        lat_ax, rps_ax = axes[2 * row][col], axes[2 * row + 1][col]
        for i, server in enumerate(servers):
            mine = sorted(
                (p for p in points if p["mode"] == mode and p["server"] == server and p.get("p50_us")),
                key=lambda p: int(p["concurrency"]),
            )
            if not mine:
                continue
            xs = [int(p["concurrency"]) for p in mine]
            color = colors[i % len(colors)]
            (line,) = lat_ax.plot(xs, [p["p50_us"] / 1000 for p in mine], marker="o", color=color)
            lat_ax.plot(xs, [(p.get("p99_us") or p["p50_us"]) / 1000 for p in mine], marker="x", linestyle="--", color=color)
            rps_ax.plot(xs, [p.get("rps") or 0 for p in mine], marker="o", color=color)
            handles.setdefault(server, line)
        levels = sorted({int(p["concurrency"]) for p in points if p["mode"] == mode})
        lat_ax.set_title(mode, fontsize=10)
        for ax in (lat_ax, rps_ax):
            ax.set_xscale("log", base=2)
            ax.set_xticks(levels)
            ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
            ax.xaxis.set_minor_locator(ticker.NullLocator())
            ax.set_xlabel("concurrency", fontsize=8)
            ax.grid(True, which="both", alpha=0.3)
        lat_ax.set_yscale("log")
        lat_ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
        lat_ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        lat_ax.set_ylabel("latency ms: p50 solid, p99 dashed", fontsize=8)
        rps_ax.set_ylabel("requests/s", fontsize=8)
        rps_ax.set_ylim(bottom=0)
    for k in range(len(modes), nrows * ncols):  # empty slots of the last row
        row, col = divmod(k, ncols)
        axes[2 * row][col].set_visible(False)
        axes[2 * row + 1][col].set_visible(False)
    fig.legend(list(handles.values()), list(handles), loc="upper center", ncol=len(handles), fontsize=9,
               bbox_to_anchor=(0.5, 1 - 0.25 / fig.get_figheight()))
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.05 / fig.get_figheight())
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.7 / fig.get_figheight()))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print("usage: python _plot.py RESULTS.json OUT.png", file=sys.stderr)
        return 2
    with open(argv[0], "rb") as f:
        data = json.load(f)
    try:
        plot_http(data["points"], argv[1], str(data.get("title", "")))
    except PlotUnavailable as exc:
        print(exc, file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
