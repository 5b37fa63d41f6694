"""One self-contained HTML page: headings, key-value tables, tables, PNG images embedded.

Problem: a report a user can mail or open from disk, with no server and no
files beside it.  Every image is inlined as a base64 ``data:`` URI and the
style sheet is inline; nothing is fetched.  All text is HTML-escaped.

Usage::

    page = Page("bert24-training")
    page.heading("Summary"); page.pairs({"max-load": 11.03})
    page.table(["device", "load"], [["a100[0]", 10.9]]); page.image("gantt.png", "Gantt chart")
    page.write("report.html")
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipesim.output import write_text

__all__ = ["Page", "fmt"]

_STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.6em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
p.note { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f3f7; } td:first-child, th:first-child { text-align: left; }
tr.mark td { font-weight: bold; background: #fff4e0; } tr.bad td { color: #a00; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
pre { background: #f6f8fa; padding: 0.8em; font-size: 0.85em; overflow-x: auto; }
p.warning { color: #a00; font-weight: bold; border: 2px solid #a00; padding: 0.5em 0.8em; background: #fff0f0; }
"""


def fmt(value: Any, digits: int = 6) -> str:
    """A table cell: numbers to ``digits`` significant figures, ``None`` as a dash.

    Examples
    --------
    >>> fmt(3.14159265, 3), fmt(None), fmt(True), fmt(float("inf")), fmt(7)
    ('3.14', '—', 'yes', '∞', '7')
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "∞" if math.isinf(value) else f"{value:.{digits}g}"
    return str(value)


class Page:
    """An HTML page built part by part; every text is escaped, every image inlined.

    Parameters
    ----------
    title : str
        The page's title and first heading.
    note : str
        A line under the title.

    Examples
    --------
    >>> page = Page("run <1>")
    >>> page.pairs({"max-load": 11.03, "feasible": True})
    >>> page.table(["device", "load"], [["a100[0]", 10.9]])
    >>> html_text = page.render()
    >>> "<h1>run &lt;1&gt;</h1>" in html_text, "<td>yes</td>" in html_text
    (True, True)
    """

    def __init__(self, title: str, note: str = "") -> None:
        self.title = title
        self.parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]
        if note:
            self.parts.append(f'<p class="note">{html.escape(note)}</p>')

    def heading(self, text: str, note: str = "") -> None:
        """A section heading, with an optional note under it."""
        self.parts.append(f"<h2>{html.escape(text)}</h2>")
        if note:
            self.parts.append(f'<p class="note">{html.escape(note)}</p>')

    def text(self, text: str) -> None:
        """A paragraph."""
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def warning(self, text: str) -> None:
        """A paragraph that must not be missed (red, boxed)."""
        self.parts.append(f'<p class="warning">{html.escape(text)}</p>')

    def code(self, text: str) -> None:
        """Preformatted text."""
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def pairs(self, items: Mapping[str, Any]) -> None:
        """A two-column table of ``name: value`` (values through :func:`fmt`)."""
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(fmt(v))}</td></tr>" for k, v in items.items())
        self.parts.append(f"<table>{rows}</table>")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], classes: Sequence[str] | None = None) -> None:
        """A table; ``classes[i]`` styles row ``i`` (``mark``: highlighted, ``bad``: red)."""
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = []
        for i, row in enumerate(rows):
            cls = classes[i] if classes and classes[i] else ""
            cells = "".join(f"<td>{html.escape(fmt(c))}</td>" for c in row)
            body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")

    def image(self, path: str | Path, alt: str) -> None:
        """Embed a PNG file (skipped with a note if it is missing)."""
        path = Path(path)
        if not path.is_file():
            self.parts.append(f'<p class="note">({html.escape(alt)}: not produced)</p>')
            return
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        self.parts.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')

    def render(self) -> str:
        """The whole page as one HTML document."""
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>\n<body>\n"
            + "\n".join(self.parts)
            + "\n</body></html>\n"
        )

    def write(self, path: str | Path) -> None:
        """Write :meth:`render` to ``path`` (UTF-8)."""
        write_text(path, self.render())
