"""Pages of the HTML report: each figure fitted whole to the view, each table as HTML.

Snakemake's report shows a PNG at its natural aspect in a panel as tall as the window,
centred, so a figure taller than the panel is cut off above and below; it shows an HTML
output in a frame as large as the panel. Each figure therefore gets a small page of its
own that fits the image to its frame (:func:`figure_page`; a click shows it at full
size), and the Markdown tables the study writes get pages that render them as HTML
tables (:func:`markdown_html`, :func:`tables_page`). The report embeds each page as a
``data:`` URL, which Chromium loads into a frame only up to 2 MB: a page is kept under
:data:`PAGE_LIMIT` bytes (a figure's image is reduced to a palette of 256 colours, and
scaled down if need be; a long table is cut short with a note naming its file). The pages
read the study's files and record nothing themselves.

Pure functions from text and bytes to HTML, and :func:`write_report_pages`, which writes
them; the standard library only (Pillow, which matplotlib brings, lightens an image that
would not fit).
"""

from __future__ import annotations

import base64
import functools
import html
import io
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from regsim.atomic import write_text_atomic
from regsim.parallel import run_tasks
from regsim.schema import MEASURE_NAMES, beta_index
from regsim.study import slice_suffix, slice_text

__all__ = [
    "PAGE_LIMIT",
    "TABLE_CSS",
    "TableSection",
    "document_page",
    "figure_page",
    "markdown_html",
    "paper_table_title",
    "slice_text",
    "tables_page",
    "write_report_pages",
    "write_views",
]

#: Largest page, in bytes, the report can show: its base64 ``data:`` URL (4/3 as long)
#: stays under the 2 MiB Chromium loads into a frame.
PAGE_LIMIT = 1_500_000

#: Style of the tables rendered from Markdown (shared with the explorer).
TABLE_CSS = """
table.md { border-collapse: collapse; margin: 0.4em 0 1.2em; font-size: 13px; }
table.md th, table.md td { padding: 2px 9px; border-bottom: 1px solid #ddd; white-space: nowrap; }
table.md thead th { border-bottom: 2px solid #555; }
table.md td.more { font-style: italic; color: #555; }
code { font-size: 92%; background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
"""

_PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 16px 20px;
       color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 1.4em; }
p { max-width: 60em; line-height: 1.4; }
details pre { background: #f6f6f6; padding: 8px; overflow: auto; font-size: 12px; }
"""

_FIGURE_CSS = """
html, body { margin: 0; height: 100%; background: #fff; }
body { display: flex; align-items: center; justify-content: center; }
img { display: block; max-width: 100vw; max-height: 100vh; width: auto; height: auto;
      cursor: zoom-in; }
body.whole { display: block; overflow: auto; }
body.whole img { max-width: none; max-height: none; cursor: zoom-out; }
"""

# A click shows the image at its full resolution (scrolling), another fits it again.
_FIGURE_JS = (
    "document.querySelector('img').addEventListener('click',"
    "function(){document.body.classList.toggle('whole');});"
)

_ALIGNS = {"---:": "right", ":---:": "center", ":---": "left", "---": "left"}
_CODE = re.compile(r"`([^`]+)`")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EM = re.compile(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_ITEM = re.compile(r"^( *)[*-] +(.*)$")


# --------------------------------------------------------------------------------------
# Markdown of the study's tables
# --------------------------------------------------------------------------------------


def _inline(text: str) -> str:
    """Escaped text with the study's inline Markdown: `code`, **strong**, *emphasis*."""
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    out = _STRONG.sub(r"<strong>\1</strong>", out)
    return _EM.sub(r"<em>\1</em>", out)


def _cells(line: str) -> list[str]:
    """The cells of a pipe-table row."""
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    return [cell.strip() for cell in inner.split("|")]


def _table(lines: Sequence[str], max_rows: int | None, source: str | None) -> str:
    """A pipe table (header, alignment row, body) as an HTML table."""
    header = _cells(lines[0])
    aligns = [_ALIGNS.get(a.replace(" ", ""), "left") for a in _cells(lines[1])]
    aligns += ["left"] * (len(header) - len(aligns))
    body = [_cells(line) for line in lines[2:]]
    shown = body if max_rows is None else body[:max_rows]

    def row(cells: Sequence[str], tag: str) -> str:
        return (
            "<tr>"
            + "".join(
                f'<{tag} style="text-align:{align}">{_inline(cell)}</{tag}>'
                for cell, align in zip(cells, aligns, strict=False)
            )
            + "</tr>"
        )

    parts = ['<table class="md">', "<thead>", row(header, "th"), "</thead>", "<tbody>"]
    parts += [row(cells, "td") for cells in shown]
    if len(shown) < len(body):
        where = f" in {html.escape(source)}" if source else ""
        parts.append(
            f'<tr><td class="more" colspan="{len(header)}">… {len(body) - len(shown)} more '
            f"rows{where} (too many to show here)</td></tr>"
        )
    parts += ["</tbody>", "</table>"]
    return "\n".join(parts)


def _bullets(items: Sequence[tuple[int, list[str]]]) -> str:
    """Bullet items (depth, lines) as nested ``<ul>`` lists; a deeper item belongs to
    the item before it."""
    parts: list[str] = []
    depth = -1
    for level, lines in items:
        level = min(level, depth + 1)  # no level skipped
        if level > depth:
            parts.append("<ul>")
        else:
            parts.append("</li>")
            for _ in range(depth - level):
                parts.append("</ul></li>")
        parts.append(f"<li>{_inline(' '.join(lines))}")
        depth = level
    parts.append("</li>")
    for _ in range(depth):
        parts.append("</ul></li>")
    parts.append("</ul>")
    return "".join(parts)


def markdown_html(text: str, *, max_rows: int | None = None, source: str | None = None) -> str:
    """The Markdown the study writes (headings, paragraphs, pipe tables) as HTML.

    Parameters
    ----------
    text : str
        A table file of the study (``results/tables/*.md``) or its protocol: ``#``
        headings, paragraphs with `code`, **strong** and *emphasis*, bullet lists (``*`` or
        ``-``, nested by two spaces a level; an indented line continues its item), fenced
        code blocks (between lines of three backquotes, kept as they are in ``<pre>``),
        and pipe tables whose second row gives each column's alignment (``---:`` right).
        Everything else is text, escaped.
    max_rows : int, optional
        Show at most this many body rows of each table, then a note of how many more.
    source : str, optional
        The file's name, for that note.

    Returns
    -------
    str
        An HTML fragment; every table is a ``<table class="md">`` with a ``<thead>`` row.
    """
    blocks: list[str] = []
    paragraph: list[str] = []
    table: list[str] = []
    items: list[tuple[int, list[str]]] = []  # (depth, lines) of a bullet list
    code: list[str] | None = None  # the lines of an open fenced code block

    def flush() -> None:
        if items:
            blocks.append(_bullets(items))
            items.clear()
        if paragraph:
            blocks.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if table:
            if len(table) >= 2 and set(table[1].replace("|", "").strip()) <= set("-: "):
                blocks.append(_table(table, max_rows, source))
            else:
                blocks.append(f"<p>{_inline(' '.join(table))}</p>")
            table.clear()

    for raw in text.splitlines():
        line = raw.rstrip()
        if code is not None:
            if line.strip() == "```":
                blocks.append(_preformatted(code))
                code = None
            else:
                code.append(line)
            continue
        if line.strip().startswith("```"):
            flush()
            code = []
            continue
        heading = _HEADING.match(line)
        item = _ITEM.match(line)
        if not line.strip():
            flush()
        elif item and not table:
            if paragraph:
                flush()
            items.append((len(item.group(1)) // 2, [item.group(2)]))
        elif items and line.startswith(" "):
            items[-1][1].append(line.strip())  # an item's text continued
        elif line.lstrip().startswith("|"):
            if paragraph:
                flush()
            table.append(line)
        elif heading:
            flush()
            level = len(heading.group(1))
            blocks.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        else:
            if table:
                flush()
            paragraph.append(line.strip())
    flush()
    if code is not None:  # a block left open runs to the end
        blocks.append(_preformatted(code))
    return "\n".join(blocks)


def _preformatted(lines: Sequence[str]) -> str:
    """The lines of a fenced code block as they are, escaped, in ``<pre>``."""
    return f"<pre>{html.escape(chr(10).join(lines), quote=False)}</pre>"


def paper_table_title(measure: str, parameter: str, levels: Mapping[str, str]) -> str:
    """Title of a paper table: ``"Coverage of the estimators of β1"`` (and its slice)."""
    j = beta_index(parameter)
    symbol = f"β{j}" if j is not None else ("σ" if parameter == "sigma" else parameter)
    title = f"{MEASURE_NAMES.get(measure, measure)} of the estimators of {symbol}"
    where = slice_text(levels)
    return f"{title} ({where})" if where else title


# --------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------


def _page(title: str, body: str, css: str, script: str = "") -> str:
    """A standalone HTML page."""
    tail = f"<script>{script}</script>\n" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{css}</style>\n</head>\n"
        f"<body>\n{body}\n{tail}</body>\n</html>\n"
    )


def _png_within(png: bytes, budget: int) -> bytes:
    """The PNG, or a lighter copy that takes at most ``budget`` bytes as base64.

    A figure has few colours: first its colours are reduced to a palette of 256 at full
    resolution (no visible change for a plot, a third of the bytes); if that is still too
    large, the image is also scaled down, by steps of 0.8. (Scaling alone does not help:
    smoothing adds colours, and the PNG of a smaller image can take more bytes.) The
    palette is Pillow's fast octree: on a 2100 × 9570 figure of a 378-cell grid it took a
    quarter of median cut's time, and its PNG was smaller, with no difference to the eye.
    """
    if len(base64.b64encode(png)) <= budget:
        return png
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    image.load()
    # Opaque RGBA (the paper figures) is quantized as it is: a copy in RGB would take as
    # much memory again, in each of the job's workers. Figures are drawn on white.
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    scale = 1.0
    while True:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        scaled = image if scale == 1.0 else image.resize(size, Image.Resampling.LANCZOS)
        palette = scaled.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        # An opaque figure's palette, in RGB: no transparency is recorded.
        palette.putpalette(palette.getpalette(rawmode="RGB"), rawmode="RGB")
        buffer = io.BytesIO()
        palette.save(buffer, format="PNG")
        smaller = buffer.getvalue()
        if len(base64.b64encode(smaller)) <= budget or min(size) <= 64:
            return smaller
        scale *= 0.8


def figure_page(png: bytes, title: str, *, limit: int = PAGE_LIMIT) -> str:
    """A page showing a PNG whole, fitted to the window (or frame) it is opened in.

    Parameters
    ----------
    png : bytes
        The figure, embedded as a ``data:`` URL.
    title : str
        The page title and the image's alternative text.
    limit : int
        Largest page in bytes; a larger image is embedded with a palette of 256 colours,
        scaled down if need be, to fit.

    Returns
    -------
    str
        The page: the image at most as wide and as tall as the view, keeping its aspect;
        a click toggles its full size.
    """
    shell = _page(title, '<img alt="" src="">', _FIGURE_CSS, _FIGURE_JS)
    data = base64.b64encode(_png_within(png, limit - len(shell.encode()) - len(title) - 64))
    image = f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data.decode()}">'
    return _page(title, image, _FIGURE_CSS, _FIGURE_JS)


def _write_figure_page(png: Path, page: Path) -> None:
    write_text_atomic(page, figure_page(png.read_bytes(), png.stem))


@dataclass(frozen=True)
class TableSection:
    """One table of a tables page.

    Attributes
    ----------
    heading : str
        Its title; empty when the Markdown has its own heading.
    markdown : str
        The table file's text.
    source : str
        The file's name (``tables/coverage_beta1.md``), shown under the table.
    latex : str, optional
        The LaTeX version of the same table, shown on request.
    """

    heading: str
    markdown: str
    source: str
    latex: str | None = None


def _section(section: TableSection, max_rows: int | None) -> str:
    parts = [f"<h2>{html.escape(section.heading)}</h2>"] if section.heading else []
    parts.append(markdown_html(section.markdown, max_rows=max_rows, source=section.source))
    parts.append(f'<p class="source">From <code>{html.escape(section.source)}</code>.</p>')
    if section.latex is not None:
        parts.append(
            f"<details><summary>LaTeX</summary><pre>{html.escape(section.latex)}</pre></details>"
        )
    return "\n".join(parts)


def tables_page(title: str, sections: Sequence[TableSection], *, limit: int = PAGE_LIMIT) -> str:
    """A page of tables rendered from the study's Markdown, each with its LaTeX on request.

    Parameters
    ----------
    title : str
        The page's title and heading.
    sections : sequence of TableSection
        The tables, in order.
    limit : int
        Largest page in bytes: longer tables are cut short (halving the rows shown) with
        a note naming their file.

    Returns
    -------
    str
        The page.
    """
    return _tables_page(title, f"<h1>{html.escape(title)}</h1>", sections, limit)


def document_page(markdown: str, source: str, *, limit: int = PAGE_LIMIT) -> str:
    """A page of one Markdown document of the study (failures, theory, the protocol),
    under its own heading (:func:`tables_page`)."""
    title = next((line[2:] for line in markdown.splitlines() if line.startswith("# ")), source)
    return _tables_page(title, "", [TableSection("", markdown, source)], limit)


def _tables_page(title: str, heading: str, sections: Sequence[TableSection], limit: int) -> str:
    longest = max((s.markdown.count("\n") for s in sections), default=0)
    max_rows: int | None = None
    while True:
        body = [heading] if heading else []
        body += [_section(section, max_rows) for section in sections]
        page = _page(title, "\n".join(body), _PAGE_CSS + TABLE_CSS)
        if len(page.encode()) <= limit or max_rows == 1:
            return page
        max_rows = max(1, (longest if max_rows is None else max_rows) // 2)


# --------------------------------------------------------------------------------------
# Writing them
# --------------------------------------------------------------------------------------


def write_report_pages(
    *,
    figures: Iterable[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
    table_groups: Mapping[str | os.PathLike[str], Mapping[str, object]],
    tables: str | os.PathLike[str],
    documents: Iterable[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
    workers: int = 1,
    alongside: Sequence[Callable[[], None]] = (),
) -> list[Path]:
    """Write the report's pages: a page per figure, per group of paper tables, per document.

    Parameters
    ----------
    figures : iterable of (path-like, path-like)
        Each figure's PNG and its page.
    table_groups : mapping
        Each tables page -> its group: ``measure``, slice ``levels`` and ``parameters``
        (``regsim.study.Study.table_groups``); a table per parameter, read from
        ``<tables>/<measure>_<parameter><slice>.md`` (and ``.tex``).
    tables : path-like
        The folder of the paper tables.
    documents : iterable of (path-like, path-like)
        Each Markdown document (failures, theory, the protocol) and its page.
    workers : int, default 1
        Pages written at once, each figure's in a process forked from this one
        (:func:`regsim.parallel.run_tasks`): reducing a large figure's colours takes a
        few tenths of a second, and a grid of many σ has dozens of them.
    alongside : sequence of callables, optional
        Other tasks run with the figures' pages, before them (e.g. the explorer,
        :func:`write_views`).

    Returns
    -------
    list of Path
        The pages written.

    Raises
    ------
    FileNotFoundError
        If a figure or table is missing.
    regsim.errors.OutputError
        If a page cannot be written.
    """
    figures = [(Path(png), Path(page)) for png, page in figures]
    # The largest images first, so that the workers end close together.
    by_size = sorted(figures, key=lambda pair: pair[0].stat().st_size, reverse=True)
    run_tasks(
        [*alongside, *(functools.partial(_write_figure_page, *pair) for pair in by_size)], workers
    )
    written = [page for _, page in figures]
    folder = Path(tables)
    for page, group in table_groups.items():
        measure = str(group["measure"])
        levels = dict(group["levels"])  # type: ignore[call-overload]
        sections = []
        for parameter in group["parameters"]:  # type: ignore[attr-defined]
            stem = f"{measure}_{parameter}{slice_suffix(levels)}"
            md, tex = folder / f"{stem}.md", folder / f"{stem}.tex"
            sections.append(
                TableSection(
                    paper_table_title(measure, str(parameter), levels),
                    md.read_text(encoding="utf-8"),
                    f"tables/{md.name}",
                    tex.read_text(encoding="utf-8") if tex.is_file() else None,
                )
            )
        where = slice_text(levels)
        title = MEASURE_NAMES.get(measure, measure) + (f" ({where})" if where else "")
        write_text_atomic(page, tables_page(title, sections))
        written.append(Path(page))
    results = folder.parent
    for markdown, page in documents:
        path = Path(markdown)
        # Named as in results/ (tables/failures.md, protocol.md).
        source = path.relative_to(results).as_posix() if path.is_relative_to(results) else path.name
        write_text_atomic(page, document_page(path.read_text(encoding="utf-8"), source))
        written.append(Path(page))
    return written


def write_views(
    *,
    figures: Iterable[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
    table_groups: Mapping[str | os.PathLike[str], Mapping[str, object]],
    tables: str | os.PathLike[str],
    documents: Iterable[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
    explorer: str | os.PathLike[str],
    config: Mapping[str, object],
    metrics: str | os.PathLike[str],
    provenance: str | os.PathLike[str],
    explorer_tables: Sequence[str | os.PathLike[str]],
    zip_fits: str | os.PathLike[str] | None = None,
    workers: int = 1,
) -> list[Path]:
    """Rule ``views``: the report's pages (:func:`write_report_pages`) and the results
    explorer (:func:`regsim.explorer.write_explorer`). With two or more ``workers`` the
    explorer is written in a process of its own beside the figures' pages (one job
    instead of two, and on two cores the explorer no longer waits for the pages); with
    one, before them.

    Parameters
    ----------
    figures, table_groups, tables, documents, workers
        As :func:`write_report_pages`.
    explorer : path-like
        The explorer's page (``results/explorer.html``).
    config, metrics, provenance, zip_fits
        As :func:`regsim.explorer.write_explorer`.
    explorer_tables : sequence of path-like
        The Markdown tables the explorer shows (its ``tables``).

    Returns
    -------
    list of Path
        The report's pages, then the explorer.
    """
    from regsim.explorer import write_explorer

    page = functools.partial(
        write_explorer,
        explorer,
        config,
        metrics=metrics,
        provenance=provenance,
        tables=list(explorer_tables),
        zip_fits=zip_fits,
    )
    written = write_report_pages(
        figures=figures,
        table_groups=table_groups,
        tables=tables,
        documents=documents,
        workers=workers,
        alongside=[page],
    )
    return [*written, Path(explorer)]
