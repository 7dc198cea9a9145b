"""A few SVG primitives for the report's plots (no plotting library): a plot area with linear or log axes,
lines, rectangles, text and a legend. Everything is escaped; numbers are rounded to 0.1 px."""

from __future__ import annotations

import math
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def _n(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


class Plot:
    """Data coordinates (``xlim``, ``ylim``) mapped onto a ``width`` x ``height`` canvas with margins."""

    def __init__(self, width: int, height: int, xlim: tuple[float, float], ylim: tuple[float, float], *,
                 xlog: bool = False, ylog: bool = False, margin: tuple[int, int, int, int] = (20, 20, 45, 70),
                 title: str = "", css_class: str = "plot") -> None:
        self.width, self.height = width, height
        self.top, self.right, self.bottom, self.left = margin
        self.xlim, self.ylim, self.xlog, self.ylog = xlim, ylim, xlog, ylog
        self.title, self.css_class = title, css_class
        self.items: list[str] = []
        self.clipped: list[str] = []  # drawn inside the plot area only

    # -- coordinates ----------------------------------------------------------------------------------
    def _frac(self, v: float, lim: tuple[float, float], log: bool) -> float:
        lo, hi = lim
        if log:
            v, lo, hi = math.log10(max(v, 1e-300)), math.log10(lo), math.log10(hi)
        return (v - lo) / (hi - lo) if hi != lo else 0.5

    def x(self, v: float) -> float:
        return self.left + self._frac(v, self.xlim, self.xlog) * (self.width - self.left - self.right)

    def y(self, v: float) -> float:
        return self.height - self.bottom - self._frac(v, self.ylim, self.ylog) * (self.height - self.top - self.bottom)

    # -- marks ----------------------------------------------------------------------------------------
    def line(self, points, color: str, width: float = 2.0, dash: str = "", label: str = "", opacity: float = 1.0,
             clip: bool = False) -> None:
        finite = [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
        if len(finite) < 2:
            return
        coords = " ".join(f"{_n(self.x(x))},{_n(self.y(y))}" for x, y in finite)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        (self.clipped if clip else self.items).append(
            f'<polyline class="series" data-label="{escape(label)}" points="{coords}" fill="none" '
                          f'stroke="{color}" stroke-width="{width}" stroke-opacity="{opacity}"{extra}>'
                          f'<title>{escape(label)}</title></polyline>')

    def dot(self, x: float, y: float, color: str, r: float = 4, label: str = "") -> None:
        self.items.append(f'<circle cx="{_n(self.x(x))}" cy="{_n(self.y(y))}" r="{r}" fill="{color}">'
                          f'<title>{escape(label)}</title></circle>')

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: str, *, stroke: str = "none",
             label: str = "", css: str = "", clip: bool = False) -> None:
        """A rectangle between data corners (x0, y0) and (x1, y1)."""
        px0, px1 = sorted((self.x(x0), self.x(x1)))
        py0, py1 = sorted((self.y(y0), self.y(y1)))
        cls = f' class="{css}"' if css else ""
        tip = f"<title>{escape(label)}</title>" if label else ""
        (self.clipped if clip else self.items).append(
            f'<rect{cls} x="{_n(px0)}" y="{_n(py0)}" width="{_n(px1 - px0)}" height="{_n(py1 - py0)}" '
                          f'fill="{fill}" stroke="{stroke}">{tip}</rect>')

    def text(self, x: float, y: float, text: str, *, size: int = 11, anchor: str = "middle", color: str = "#222",
             pixel: bool = False, dy: float = 0) -> None:
        px, py = (x, y) if pixel else (self.x(x), self.y(y))
        self.items.append(f'<text x="{_n(px)}" y="{_n(py + dy)}" font-size="{size}" text-anchor="{anchor}" '
                          f'fill="{color}">{escape(text)}</text>')

    def axes(self, xlabel: str, ylabel: str, xticks, yticks, xfmt=str, yfmt=str) -> None:
        x0, x1 = self.left, self.width - self.right
        y0, y1 = self.height - self.bottom, self.top
        self.items.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#444"/>'
                          f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#444"/>')
        for v in xticks:
            px = self.x(v)
            self.items.append(f'<line x1="{_n(px)}" y1="{y0}" x2="{_n(px)}" y2="{y0 + 4}" stroke="#444"/>')
            self.text(px, y0 + 16, xfmt(v), pixel=True, size=10)
        for v in yticks:
            py = self.y(v)
            self.items.append(f'<line x1="{x0 - 4}" y1="{_n(py)}" x2="{x0}" y2="{_n(py)}" stroke="#444"/>'
                              f'<line x1="{x0}" y1="{_n(py)}" x2="{x1}" y2="{_n(py)}" stroke="#000" stroke-opacity="0.06"/>')
            self.text(x0 - 7, py + 3, yfmt(v), pixel=True, size=10, anchor="end")
        self.text((x0 + x1) / 2, self.height - 8, xlabel, pixel=True, size=12)
        self.items.append(f'<text x="14" y="{_n((y0 + y1) / 2)}" font-size="12" text-anchor="middle" '
                          f'transform="rotate(-90 14 {_n((y0 + y1) / 2)})">{escape(ylabel)}</text>')

    def legend(self, entries: list[tuple[str, str, str]], x: float | None = None, y: float | None = None) -> None:
        """``entries``: (label, color, dash); drawn top-left inside the plot area unless placed."""
        x = self.left + 10 if x is None else x
        y = self.top + 8 if y is None else y
        for i, (label, color, dash) in enumerate(entries):
            yy = y + 16 * i
            extra = f' stroke-dasharray="{dash}"' if dash else ""
            self.items.append(f'<line x1="{_n(x)}" y1="{_n(yy + 5)}" x2="{_n(x + 22)}" y2="{_n(yy + 5)}" '
                              f'stroke="{color}" stroke-width="3"{extra}/>')
            self.text(x + 28, yy + 9, label, pixel=True, size=11, anchor="start")

    def render(self) -> str:
        global _clip_ids
        title = f"<title>{escape(self.title)}</title>" if self.title else ""
        clipped = ""
        if self.clipped:
            _clip_ids += 1
            cid = f"dlkata-clip-{_clip_ids}"
            w, h = self.width - self.left - self.right, self.height - self.top - self.bottom
            clipped = (f'<defs><clipPath id="{cid}"><rect x="{self.left}" y="{self.top}" width="{w}" height="{h}"/>'
                       f'</clipPath></defs><g clip-path="url(#{cid})">' + "".join(self.clipped) + "</g>")
        return (f'<svg class="{self.css_class}" xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
                f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" role="img">{title}'
                + clipped + "".join(self.items) + "</svg>")


_clip_ids = 0


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten between lo and hi (inclusive)."""
    start, stop = math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9)
    return [10.0 ** k for k in range(start, stop + 1)]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if n == int(n) else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:g}"
