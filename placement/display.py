"""Results that show themselves: one small table type for ``__repr__`` and Jupyter's ``_repr_html_``.

Problem: a result printed in a notebook or a REPL should read as the command
line's table does — a headline, then one row per device or stage — without
pulling a rendering library into the placement layer (imports flow
``hardware`` → ``placement`` → ``pipesim``, so the rich tables of
:mod:`pipesim.report` are out of reach here).  :class:`Display` is that
table: plain text for ``__repr__`` and escaped HTML for ``_repr_html_``,
with optional inline pictures (PNG bytes) that the simulation layer adds.

Examples
--------
>>> d = Display("dp: optimal", ("device", "load"), [("accelerator[0]", "1.5")])
>>> print(d.text())
dp: optimal
device          load
accelerator[0]  1.5
>>> "<table" in d.html() and "accelerator[0]" in d.html()
True
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipesim.hardware.units import format_bytes

__all__ = ["Display", "number", "size"]

#: Rows shown before the rest is summarised (a 3,000-device table helps nobody in a notebook).
MAX_ROWS = 64


def number(x: float | None, digits: int = 4) -> str:
    """A figure for a table: ``-`` for none, ``inf`` for unbounded, else ``digits`` significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{x:.{digits}g}"


def size(n: float | None) -> str:
    """Bytes in binary units (:func:`pipesim.hardware.units.format_bytes`); ``-`` for none."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "-"
    return format_bytes(n)


@dataclass
class Display:
    """A headline, a table, and optional notes and pictures.

    Attributes
    ----------
    title : str
        The headline (method and status, the time per sample…).
    headers : sequence of str
    rows : sequence of sequences of str
    notes : list of str
        Lines after the table (warnings, violations); shown in red in HTML.
    images : list of bytes
        PNG pictures, inlined in the HTML as data URIs (the text form omits them).
    """

    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    notes: list[str] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)

    def _shown(self) -> tuple[list[Sequence[str]], int]:
        rows = list(self.rows)
        return rows[:MAX_ROWS], max(0, len(rows) - MAX_ROWS)

    def text(self) -> str:
        """Aligned plain text: the headline, the header row, the rows, the notes."""
        rows, hidden = self._shown()
        lines = [self.title]
        if self.headers:
            table = [list(self.headers), *[list(r) for r in rows]]
            widths = [max(len(str(r[i])) for r in table) for i in range(len(self.headers))]
            lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
        if hidden:
            lines.append(f"... {hidden} more rows")
        return "\n".join(lines + self.notes)

    def html(self) -> str:
        """One self-contained HTML fragment (escaped text; pictures as data URIs)."""
        rows, hidden = self._shown()
        e = html.escape
        parts = [f"<div><p><b>{e(self.title)}</b></p>"]
        if self.headers:
            parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in self.headers) + "</tr></thead><tbody>")
            parts += ["<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows]
            parts.append("</tbody></table>")
        if hidden:
            parts.append(f"<p>… {hidden} more rows</p>")
        parts += [f'<p style="color:#b00">{e(n)}</p>' for n in self.notes]
        parts += [f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}"/>' for png in self.images]
        parts.append("</div>")
        return "".join(parts)
