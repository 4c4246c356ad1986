"""Building blocks of the HTML report: the stylesheet, escaping, the one number format, tables.

Numbers: integers (and means of 1,000 or more) grouped with commas, 1,234,567; other values with 3
significant digits, 0.0778; fractions as percent with one decimal, 12.3 %; a missing value is "–".
"""
from __future__ import annotations

import html

import numpy as np

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:1em auto;max-width:1280px;
 color:#1d1d1d;padding:0 .8em;line-height:1.4;overflow-wrap:break-word}
h1{font-size:1.4em;margin:.2em 0} h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1.05em} .meta{color:#555;margin:.3em 0 .6em;font-size:.9em}
.tw{overflow-x:auto;width:fit-content;max-width:100%;margin:.6em 0;border:1px solid #e4e4e4}
table{border-collapse:collapse;font-size:.88em} th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right;vertical-align:top}
th{background:#f3f3f3;font-weight:600} td.l,th.l{text-align:left} tr.total td{font-weight:bold;background:#fafafa}
td.l{min-width:5.5em} td.wrap{min-width:16em;max-width:36em;white-space:normal}
.note{color:#555;font-size:.9em} .estimate{background:#fff8e5;border-left:4px solid #e0a800;padding:.3em .8em}
.cards{display:grid;gap:.6em;grid-template-columns:repeat(auto-fill,minmax(min(100%,17em),1fr))}
.cards.small{grid-template-columns:repeat(auto-fill,minmax(min(100%,12em),1fr))}
.card{border:1px solid #ccc;border-left-width:6px;border-radius:6px;padding:.45em .7em;background:#fff}
.card .k{font-size:.85em;color:#444} .card .v{font-size:1.25em;font-weight:700;margin:.1em 0}
.card p{margin:.2em 0 0;font-size:.82em;color:#333}
.card.pass{border-color:#1a7f37;background:#eef8f0} .card.fail{border-color:#c62828;background:#fdeeee}
.card.unknown{border-color:#888;background:#f5f5f5} .card.info{border-left-color:#4c72b0}
.cards.small .card .v{font-size:1.1em}
@media (max-width:899px){td:not(.l){white-space:nowrap}}
@media (min-width:900px){#verdicts .cards{grid-template-columns:1.3fr 1.3fr 1fr 1fr}}
@media (max-width:899px){#verdicts .card.wide{grid-column:1/-1}
 #verdicts .cards{grid-template-columns:repeat(auto-fill,minmax(min(100%,10em),1fr))}}
.ok{color:#1a7f37} .bad{color:#c62828;font-weight:600} .warn{color:#8a5a00;font-weight:600}
tr.near td{background:#fff4d6} tr.over td{background:#fde2e2}
.figs{display:grid;gap:1em;grid-template-columns:repeat(auto-fill,minmax(min(100%,560px),1fr))}
figure{margin:0} figcaption{font-size:.85em;color:#555} svg.fig{width:100%;height:auto;display:block}
a.g{color:inherit;text-decoration:none} abbr{text-decoration:underline dotted;cursor:help}
dl{display:grid;grid-template-columns:fit-content(35%) 1fr;gap:.2em .8em;font-size:.9em} dt{font-weight:600}
details summary{cursor:pointer} code{overflow-wrap:anywhere}
"""


def e(x: object) -> str:
    """HTML-escaped ``str(x)``."""
    return html.escape(str(x))


def n(x: float | np.number | np.bool_ | None) -> str:
    """The page's one number format (see the module docstring)."""
    if x is None:
        return "–"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    xf = float(x)
    if xf != xf:
        return "–"
    if isinstance(x, (int, np.integer)) or xf.is_integer():
        return f"{int(xf):,}"
    if abs(xf) >= 1000:
        return f"{xf:,.0f}"
    return f"{xf:.3g}"


def pct(f: float | None) -> str:
    """A fraction as percent with one decimal: 0.1234 → "12.3 %" (a no-break space: never split over two lines)."""
    return "–" if f is None else f"{100 * float(f):.1f}\u00a0%"


def table(headers: list[str], rows: list[list], left: int = 1, total_last: bool = False,
          also_left: tuple[int, ...] = (), row_classes: list[str] | None = None, wrap: tuple[int, ...] = ()) -> str:
    """A table in its own horizontally scrolling box. ``headers`` are HTML (escape text yourself); cells are
    escaped. Columns ``< left`` and in ``also_left`` are left-aligned (text), the others right (numbers);
    columns in ``wrap`` wrap long text."""
    lft = lambda i: "l" if i < left or i in also_left else ""  # noqa: E731
    cls = lambda i: " ".join(c for c in (lft(i), "wrap" if i in wrap else "") if c)  # noqa: E731
    out = ['<div class="tw"><table><thead><tr>']
    out += [f'<th class="{lft(i)}">{h}</th>' for i, h in enumerate(headers)]
    out.append("</tr></thead><tbody>")
    for j, row in enumerate(rows):
        rc = [row_classes[j]] if row_classes and row_classes[j] else []
        if total_last and j == len(rows) - 1:
            rc.append("total")
        attr = f' class="{" ".join(rc)}"' if rc else ""
        out.append(f"<tr{attr}>" + "".join(f'<td class="{cls(i)}">{e(c)}</td>' for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


__all__ = ["CSS", "e", "n", "pct", "table"]
