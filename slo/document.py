"""The suite's report document: one model (sections, facts, tables, figures) and its two renderings.

A report (`nova slo report`, the game-day report, the game-day comparison) builds a `Document` and
hands it to `render_html` (one self-contained page: inline CSS and inline SVG, nothing fetched) and
`render_markdown` (for wikis and pull requests, with PNG plots beside it). Every piece of text in
the model is plain text: the renderers escape it, so no report writes markup of its own and a
hostile name (an SLO id, a phase title, a check's evidence) is shown, never interpreted.

Also owns how values read in a report (`format_time`, `format_duration_short`, `format_burn`), so
the reports that share a page style also share their wording of times, durations and burn rates.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote

from slo.durations import format_duration

__all__ = [
    "Block",
    "Cell",
    "Details",
    "Document",
    "Facts",
    "Figure",
    "Figures",
    "Gauge",
    "Inline",
    "LineBreak",
    "Link",
    "Paragraph",
    "Pill",
    "Row",
    "Section",
    "Table",
    "Text",
    "Time",
    "format_burn",
    "format_duration_short",
    "format_time",
    "iso_time",
    "plain_text",
    "render_html",
    "render_markdown",
    "section_anchors",
    "unique_slugs",
]

# --- how values read -------------------------------------------------------------------------------


def format_time(seconds: float) -> str:
    """UTC time as an SRE writes it in an incident doc; seconds only when the moment has them."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if moment.second else "%Y-%m-%d %H:%M UTC")


def iso_time(seconds: float) -> str:
    """RFC 3339 UTC with a `Z`, to the second: what a `<time datetime>` and report.json carry."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def format_duration_short(seconds: float) -> str:
    """A duration rounded to whole seconds in the suite's notation (`3m20s`); `0s` for none or less."""
    whole = round(seconds)
    return "0s" if whole <= 0 else format_duration(whole)


def format_burn(rate: float | None) -> str:
    """A burn rate as a multiple of the sustainable rate: two decimals below 100x, whole above."""
    if rate is None:
        return "—"
    return f"{rate:.2f}x" if rate < 100 else f"{rate:.0f}x"


def unique_slugs(names: Sequence[str], *, lower: bool = False) -> list[str]:
    """File- and anchor-safe names, one per name and all different, in order (`a`, `a-2`, `a-3`).

    Nothing stops an SLO id or a phase name holding `/`, `..` or markup: only letters, digits and
    `._-` survive. `lower` folds case first, for anchors (which some Markdown renderers lowercase).
    """
    seen: set[str] = set()
    slugs = []
    for name in names:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", name.lower() if lower else name).strip("._") or "section"
        slug, n = base, 2
        while slug in seen:
            slug, n = f"{base}-{n}", n + 1
        seen.add(slug)
        slugs.append(slug)
    return slugs


# --- the model --------------------------------------------------------------------------------------

TextStyle = Literal["plain", "code", "strong", "muted", "emphasis"]


@dataclass(frozen=True)
class Text:
    """A run of plain text; `code` is an identifier, `muted` a side remark, `strong` what must be seen."""

    text: str
    style: TextStyle = "plain"


@dataclass(frozen=True)
class Pill:
    """A verdict or a label in a coloured pill; `tone` names its colour (`passed`, `failed`, `sev-page`...)."""

    words: str
    tone: str


@dataclass(frozen=True)
class Time:
    """A moment in UTC (a `<time>` element in HTML); `empty` is said when there is no moment."""

    seconds: float | None
    empty: str = "—"


@dataclass(frozen=True)
class Link:
    """A link to a file beside the report (a relative path) or to a section (`#anchor`)."""

    href: str
    text: str
    code: bool = False


@dataclass(frozen=True)
class Gauge:
    """A small bar beside a number, `share` of it full (0 to 1); decoration, absent from Markdown."""

    share: float
    tone: Literal["good", "warn", "bad"]


@dataclass(frozen=True)
class LineBreak:
    """A line break inside a cell."""


@dataclass(frozen=True)
class Details:
    """Long preformatted text folded under a short summary (a page's full text, say)."""

    summary: str
    text: str


Inline = Text | Pill | Time | Link | Gauge | LineBreak | Details
Content = str | Inline | Sequence[Inline]  # a str is plain text


@dataclass(frozen=True)
class Cell:
    """A table cell; `tone` marks it (`hot`, `warm`: a burn rate above its factor) for the eye."""

    content: Content
    tone: str | None = None


@dataclass(frozen=True)
class Row:
    """A table row; `tone` marks the whole row (`fail`: a failed check)."""

    cells: Sequence[Content | Cell]
    tone: str | None = None


@dataclass(frozen=True)
class Table:
    """A table with a header; with no rows it says `empty` instead. `numeric` columns align right.

    `row_headers` makes each row's first cell its header (a matrix such as burn rates by window).
    """

    head: Sequence[str]
    rows: Sequence[Row | Sequence[Content | Cell]]
    empty: str = "Nothing to show."
    numeric: frozenset[int] = frozenset()
    css: str = ""
    row_headers: bool = False


@dataclass(frozen=True)
class Facts:
    """Named values, one per line: a two-column table of label and value."""

    items: Sequence[tuple[str, Content]]


@dataclass(frozen=True)
class Paragraph:
    """A paragraph; a `description` introduces its section, a `note` stands in for something absent."""

    content: Content
    kind: Literal["text", "description", "note"] = "text"


@dataclass(frozen=True)
class Figure:
    """One plot, drawn twice: `svg` inlined in HTML, the PNG at `png_path` (relative) linked from Markdown.

    With no drawing (`svg` None) the figure says `empty_text` instead. `wide` spans the page;
    `data` becomes `data-*` attributes, so a reader (or a test) can find a plot by what it shows.
    """

    kind: str
    caption: str
    alt: str
    svg: str | None
    png_path: str | None
    empty_text: str | None = None
    wide: bool = True
    data: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class Figures:
    """Plots side by side (two to a row; a wide one takes the row)."""

    figures: Sequence[Figure]


SectionLayout = Literal["card", "wide-card", "plain"]


@dataclass(frozen=True)
class Section:
    """A titled part of the document; sections nest (a top-level section's parts are its cards).

    `title` may carry inline styling; `badges` are verdict pills beside it. `anchor` is the
    top-level section's link target (`#anchor`); without one it is made from the title, and
    duplicates get `-2`, `-3` in document order (`section_anchors`). `css` adds classes to a
    top-level section; `layout` places a nested one: a card, a card across the page, or plain.
    """

    title: Content
    blocks: Sequence[Block] = ()
    badges: Sequence[Pill] = ()
    anchor: str | None = None
    css: str = ""
    layout: SectionLayout = "card"


Block = Paragraph | Facts | Table | Figures | Section


@dataclass(frozen=True)
class Document:
    """A whole report: a title (with an optional overall verdict), header facts, sections and a footer."""

    title: str
    sections: Sequence[Section]
    facts: Sequence[tuple[str, Content]] = ()
    verdict: Pill | None = None
    page_title: str | None = None  # the browser tab's; the title (and verdict) when None
    generator: str = "nova"
    footer: Content = ()


def _inlines(content: Content) -> tuple[Inline, ...]:
    if isinstance(content, str):
        return (Text(content),)
    if isinstance(content, Text | Pill | Time | Link | Gauge | LineBreak | Details):
        return (content,)
    return tuple(content)


def plain_text(content: Content) -> str:
    """The words of `content` without styling: what a slug or a tab title is made from."""
    parts = []
    for item in _inlines(content):
        if isinstance(item, Text):
            parts.append(item.text)
        elif isinstance(item, Pill):
            parts.append(item.words)
        elif isinstance(item, Time):
            parts.append(item.empty if item.seconds is None else format_time(item.seconds))
        elif isinstance(item, Link):
            parts.append(item.text)
        elif isinstance(item, LineBreak):
            parts.append(" ")
        elif isinstance(item, Details):
            parts.append(item.summary)
    return "".join(parts)


def section_anchors(document: Document) -> list[str]:
    """Each top-level section's anchor, in order: its own, or its title's slug; duplicates numbered.

    Given anchors are kept as they are (a report links to them); a title's slug never takes one.
    """
    given = [s.anchor for s in document.sections if s.anchor]
    if len(set(given)) != len(given):
        raise ValueError(f"two sections share an anchor: {sorted(a for a in given if given.count(a) > 1)}")
    taken = set(given)
    anchors = []
    for section in document.sections:
        if section.anchor:
            anchors.append(section.anchor)
            continue
        base = unique_slugs([plain_text(section.title)], lower=True)[0]
        anchor, n = base, 2
        while anchor in taken:
            anchor, n = f"{base}-{n}", n + 1
        taken.add(anchor)
        anchors.append(anchor)
    return anchors


# --- HTML --------------------------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _css_classes(*names: str) -> str:
    """Class names as an attribute value: anything but letters, digits, `-` and `_` is dropped."""
    return " ".join(re.sub(r"[^A-Za-z0-9_-]", "", part) for name in names for part in name.split() if part)


def _href(href: str) -> str:
    """A link target that cannot leave its attribute or its Markdown parentheses; `%` escapes are kept."""
    return quote(href, safe="/#%:?=&+~@!$,;*'.-_")


_TEXT_TAGS = {"code": "code", "strong": "strong", "emphasis": "em"}


def _html_inline(item: Inline) -> str:
    if isinstance(item, Text):
        if item.style == "plain":
            return _e(item.text)
        if item.style == "muted":
            return f'<span class="muted">{_e(item.text)}</span>'
        tag = _TEXT_TAGS[item.style]
        return f"<{tag}>{_e(item.text)}</{tag}>"
    if isinstance(item, Pill):
        return f'<span class="pill {_css_classes(item.tone)}">{_e(item.words)}</span>'
    if isinstance(item, Time):
        if item.seconds is None:
            return _e(item.empty)
        return f'<time datetime="{_e(iso_time(item.seconds))}">{_e(format_time(item.seconds))}</time>'
    if isinstance(item, Link):
        text = f"<code>{_e(item.text)}</code>" if item.code else _e(item.text)
        return f'<a href="{_e(_href(item.href))}">{text}</a>'
    if isinstance(item, Gauge):
        share = max(0.0, min(1.0, item.share))
        return (
            f'<span class="gauge {_css_classes(item.tone)}" aria-hidden="true">'
            f'<span style="width:{share * 100:.1f}%"></span></span>'
        )
    if isinstance(item, LineBreak):
        return "<br>"
    return f'<details class="long-text"><summary>{_e(item.summary)}</summary><pre>{_e(item.text)}</pre></details>'


def _html_content(content: Content) -> str:
    return "".join(_html_inline(item) for item in _inlines(content))


def _html_cell(cell: Content | Cell, numeric: bool, header: bool) -> str:
    content, tone = (cell.content, cell.tone) if isinstance(cell, Cell) else (cell, None)
    classes = _css_classes("num" if numeric else "", tone or "")
    attributes = (' scope="row"' if header else "") + (f' class="{classes}"' if classes else "")
    tag = "th" if header else "td"
    return f"<{tag}{attributes}>{_html_content(content)}</{tag}>"


def _row(row: Row | Sequence[Content | Cell]) -> Row:
    return row if isinstance(row, Row) else Row(row)


_NUM = ' class="num"'


def _html_table(table: Table) -> str:
    if not table.rows:
        return f'<p class="none">{_e(table.empty)}</p>'
    head = "".join(f"<th{_NUM if i in table.numeric else ''}>{_e(h)}</th>" for i, h in enumerate(table.head))
    body = []
    for row in map(_row, table.rows):
        cells = "".join(
            _html_cell(cell, i in table.numeric, table.row_headers and i == 0) for i, cell in enumerate(row.cells)
        )
        tone = f' class="{_css_classes(row.tone)}"' if row.tone else ""
        body.append(f"<tr{tone}>{cells}</tr>")
    css = f' class="{_css_classes(table.css)}"' if table.css else ""
    return f'<div class="scroll"><table{css}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _html_facts(facts: Facts) -> str:
    rows = "".join(f'<tr><th scope="row">{_e(k)}</th><td>{_html_content(v)}</td></tr>' for k, v in facts.items)
    return f'<table class="facts">{rows}</table>'


_PARAGRAPH_CLASS = {"text": "", "description": ' class="description"', "note": ' class="none"'}


def _html_figure(figure: Figure) -> str:
    if figure.svg is None:
        content = f'<p class="plot-empty">{_e(figure.empty_text or "")}</p>'
    else:
        content = figure.svg.replace("<svg ", f'<svg role="img" aria-label="{_e(figure.caption)}" ', 1)
    classes = _css_classes("plot", "full" if figure.wide else "", "empty" if figure.svg is None else "")
    data = "".join(f' data-{_css_classes(key)}="{_e(value)}"' for key, value in (("plot", figure.kind), *figure.data))
    return f'<figure class="{classes}"{data}>{content}<figcaption>{_e(figure.caption)}</figcaption></figure>'


def _html_block(block: Block, depth: int) -> str:
    """One block of a section at `depth` (1: top level)."""
    if isinstance(block, Paragraph):
        return f"<p{_PARAGRAPH_CLASS[block.kind]}>{_html_content(block.content)}</p>"
    if isinstance(block, Facts):
        return _html_facts(block)
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Figures):
        return f'<div class="plots">{"".join(_html_figure(f) for f in block.figures)}</div>'
    return _html_nested(block, depth + 1)


def _html_title(section: Section, tag: str, attributes: str = "") -> str:
    badges = "".join(" " + _html_inline(badge) for badge in section.badges)
    return f"<{tag}{attributes}>{_html_content(section.title)}{badges}</{tag}>"


def _html_blocks(blocks: Sequence[Block], depth: int) -> str:
    """Blocks in order; consecutive cards are set in one grid."""
    out: list[str] = []
    cards: list[str] = []
    for block in blocks:
        if isinstance(block, Section) and block.layout != "plain" and depth == 1:
            cards.append(_html_nested(block, depth + 1))
            continue
        if cards:
            out.append(f'<div class="cards">{"".join(cards)}</div>')
            cards = []
        out.append(_html_block(block, depth))
    if cards:
        out.append(f'<div class="cards">{"".join(cards)}</div>')
    return "\n".join(out)


def _html_nested(section: Section, depth: int) -> str:
    """A section inside another, at `depth` (2: a top-level section's part, shown as a card unless plain)."""
    heading = _html_title(section, "h3" if depth <= 3 else "h4")
    body = _html_blocks(section.blocks, depth)
    if section.layout == "plain" or depth > 2:
        return f"{heading}\n{body}"
    css = "card full" if section.layout == "wide-card" else "card"
    return f'<div class="{css}">{heading}{body}</div>'


def _html_section(section: Section, anchor: str) -> str:
    classes = _css_classes("part", section.css)
    heading = _html_title(section, "h2")
    return f'<section class="{classes}" id="{_e(anchor)}">\n{heading}\n{_html_blocks(section.blocks, 1)}\n</section>'


def render_html(document: Document) -> str:
    """The document as one self-contained HTML page: inline CSS, inline SVG, nothing fetched, no script."""
    anchors = section_anchors(document)
    verdict = document.verdict
    title = _e(document.title) + (f' <span class="verdict">{_e(verdict.words)}</span>' if verdict else "")
    page_title = document.page_title or document.title + (f" {verdict.words}" if verdict else "")
    header_css = _css_classes("page", f"verdict-{verdict.tone}" if verdict else "")
    facts = "".join(f"<div><dt>{_e(k)}</dt><dd>{_html_content(v)}</dd></div>" for k, v in document.facts)
    sections = "\n".join(_html_section(s, a) for s, a in zip(document.sections, anchors, strict=True))
    footer = f"<footer>{_html_content(document.footer)}</footer>\n" if _inlines(document.footer) else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{_e(document.generator)}">
<title>{_e(page_title)}</title>
<style>{CSS}</style>
</head>
<body>
<header class="{header_css}">
<h1>{title}</h1>
<dl class="meta">{facts}</dl>
</header>
<main>
{sections}
</main>
{footer}</body>
</html>
"""


CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;--ok:#1a7f37;--okbg:#dafbe1;
--bad:#cf222e;--badbg:#ffebe9;--warn:#9a6700;--warnbg:#fff8c5;--accent:#0969da}
*{box-sizing:border-box}
body{margin:0;color:var(--fg);background:#eef1f4;
font:14px/1.45 system-ui,-apple-system,"Segoe UI","DejaVu Sans","Liberation Sans",sans-serif}
header.page{background:#0d1117;color:#f0f6fc;padding:22px 32px 18px}
header.page h1{margin:0 0 10px;font-size:24px;font-weight:600}
header.page.verdict-passed{border-bottom:6px solid #2da44e}
header.page.verdict-failed,header.page.verdict-aborted{border-bottom:6px solid #cf222e}
header.page .verdict{padding:0 10px;border-radius:6px}
header.page.verdict-passed .verdict{background:#1a7f37}
header.page.verdict-failed .verdict,header.page.verdict-aborted .verdict{background:#cf222e}
dl.meta{display:flex;flex-wrap:wrap;gap:6px 32px;margin:0}
dl.meta div{display:flex;gap:8px}
dl.meta dt{color:#9198a1}
dl.meta dd{margin:0;font-weight:500;word-break:break-all}
main{max-width:1280px;margin:0 auto;padding:20px 24px 32px}
h2{font-size:19px;margin:0 0 6px;font-weight:600}
h3,h4{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:0 0 8px}
.card .scroll+h3,.card table+h3,.part>.scroll+h3,.part>h3{margin-top:18px}
section.part{background:#fff;border:1px solid var(--line);border-radius:8px;padding:18px 20px;margin:0 0 20px}
section.part.status-failed,section.part.status-aborted{border-left:5px solid var(--bad)}
section.part.status-deviated{border-left:5px solid #d4a72c}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid var(--line);vertical-align:middle}
thead th{font-size:12px;color:var(--muted);font-weight:600;background:var(--soft)}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody th[scope=row]{color:var(--muted);font-weight:500}
td{font-variant-numeric:tabular-nums}
td time{white-space:nowrap}
td a,dd a{color:var(--accent);text-decoration:none}
td a:hover,dd a:hover{text-decoration:underline}
table.overview a{font-weight:600}
table.facts th{width:1%;white-space:nowrap;padding-right:24px}
table.facts td{white-space:nowrap}
section.phase table.facts td{white-space:normal;overflow-wrap:anywhere}
td.warm{background:var(--warnbg);color:var(--warn);font-weight:600}
td.hot{background:var(--badbg);color:var(--bad);font-weight:600}
tr.fail td{background:#fff5f5}
code{font:12.5px ui-monospace,"DejaVu Sans Mono",monospace;background:var(--soft);padding:1px 5px;border-radius:4px;
word-break:break-all}
td code{word-break:normal;overflow-wrap:break-word}
.muted{color:var(--muted);font-size:12px}
h2 .muted{font-size:inherit;font-weight:500}
.description{color:var(--muted);margin:0 0 12px;max-width:80ch}
.cards{display:grid;grid-template-columns:minmax(300px,1fr) 2fr;gap:16px;margin:12px 0 16px}
section.phase .cards{grid-template-columns:1fr 1fr}
.card.full{grid-column:1/-1}
.card{border:1px solid var(--line);border-radius:6px;padding:12px 14px;overflow-x:auto;min-width:0}
.scroll{overflow-x:auto}
.pill{display:inline-block;font-size:12px;font-weight:600;padding:1px 9px;border-radius:999px;
vertical-align:middle;margin-left:6px;white-space:nowrap;border:1px solid transparent}
td>.pill:first-child,p>.pill:first-child{margin-left:0}
.pill.met,.pill.passed{background:var(--okbg);color:var(--ok);border-color:#aceebb}
.pill.breached,.pill.firing,.pill.failed,.pill.aborted{background:var(--badbg);color:var(--bad);border-color:#ffcecb}
.pill.deviated{background:var(--warnbg);color:var(--warn);border-color:#eed888}
.pill.unknown{background:var(--soft);color:var(--muted);border-color:var(--line)}
.pill.sev-page{background:var(--badbg);color:var(--bad)}
.pill.sev-ticket{background:#fff1e5;color:#bc4c00}
.gauge{display:inline-block;width:56px;height:8px;border-radius:4px;background:var(--soft);
border:1px solid var(--line);margin-right:8px;vertical-align:middle;overflow:hidden}
.gauge span{display:block;height:100%}
.gauge.good span{background:#4ac26b}.gauge.warn span{background:#d4a72c}.gauge.bad span{background:var(--bad)}
.gauge.bad{background:var(--badbg)}
p.none{color:var(--muted);margin:4px 0}
.plots{display:grid;grid-template-columns:1fr 1fr;gap:14px}
figure.plot{margin:0;border:1px solid var(--line);border-radius:6px;padding:8px 8px 6px;background:#fff;min-width:0}
figure.plot.full{grid-column:1/-1}
figure.plot svg{display:block;width:100%;height:auto}
figure.plot.empty{display:flex;flex-direction:column;justify-content:center;min-height:120px;background:var(--soft)}
.plot-empty{margin:0;padding:16px;text-align:center;color:var(--muted);font-size:15px}
figcaption{font-size:12px;color:var(--muted);padding:4px 4px 0}
details.long-text pre{white-space:pre-wrap;max-height:24em;overflow:auto;font-size:12px}
footer{max-width:1280px;margin:0 auto;padding:0 24px 32px;color:var(--muted);font-size:12px}
@media (max-width:900px){.cards,.plots,section.phase .cards{grid-template-columns:1fr}}
@media print{body{background:#fff}section.part{break-inside:avoid-page}}
"""


# --- Markdown ----------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")  # with [ ] quoted, ( ) ! can no longer form links
_MD_LINE_START = re.compile(r"^([#>+-]|\d+\.)")
_MD_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")  # only an `&` that would start a character reference
_MD_CODE_SAFE = re.compile(r"[A-Za-z0-9_.:/@+=,-]+")  # shown in a code span as is; anything else is quoted text
# Pills whose words a Markdown reader must not miss: what is shown in red on the page is bold here.
MARKDOWN_STRONG_TONES = frozenset({"failed", "breached", "aborted", "firing"})
MARKDOWN_STRONG_CELLS = frozenset({"hot"})


def _md(text: object, *, starts_line: bool = False) -> str:
    """Markdown-safe text: markup escaped (Markdown passes raw HTML through) and syntax characters quoted.

    `starts_line` also quotes what would make a heading, quote or list item at the start of a line.
    """
    escaped = _MD_ENTITY.sub("&amp;", str(text)).replace("<", "&lt;").replace(">", "&gt;")
    quoted = _MD_SPECIAL.sub(r"\\\1", escaped).replace("\n", " ")
    return _MD_LINE_START.sub(r"\\\1", quoted) if starts_line else quoted


def _md_inline(item: Inline) -> str:
    if isinstance(item, Text):
        if item.style == "code":
            return f"`{item.text}`" if _MD_CODE_SAFE.fullmatch(item.text) else _md(item.text)
        if item.style == "strong":
            return f"**{_md(item.text)}**"
        if item.style == "emphasis":
            return f"_{_md(item.text)}_"
        return _md(item.text)
    if isinstance(item, Pill):
        return f"**{_md(item.words)}**" if item.tone in MARKDOWN_STRONG_TONES else _md(item.words)
    if isinstance(item, Time):
        return _md(item.empty if item.seconds is None else format_time(item.seconds))
    if isinstance(item, Link):
        return f"[{_md(item.text)}]({_href(item.href)})"
    if isinstance(item, Gauge):
        return ""
    if isinstance(item, LineBreak):
        return "<br>"
    folded = "<br>".join(_md(line) for line in item.text.splitlines())
    return f"<details><summary>{_md(item.summary)}</summary>{folded}</details>"


def _md_content(content: Content, *, starts_line: bool = False) -> str:
    text = "".join(_md_inline(item) for item in _inlines(content))
    return _MD_LINE_START.sub(r"\\\1", text) if starts_line else text


def _md_cell(cell: Content | Cell) -> str:
    if isinstance(cell, Cell):
        text = _md_content(cell.content)
        return f"**{text}**" if cell.tone in MARKDOWN_STRONG_CELLS and text else text
    return _md_content(cell)


def _md_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _md_block(block: Block, depth: int) -> list[str]:
    if isinstance(block, Paragraph):
        return [_md_content(block.content, starts_line=True)]
    if isinstance(block, Facts):
        return [_md_table(["", ""], ([_md(k), _md_content(v)] for k, v in block.items))]
    if isinstance(block, Table):
        if not block.rows:
            return [_md(block.empty, starts_line=True)]
        return [_md_table([_md(h) for h in block.head], ([_md_cell(c) for c in _row(r).cells] for r in block.rows))]
    if isinstance(block, Figures):
        return _join_blocks([_md_figure(figure)] for figure in block.figures)
    return _md_section(block, depth + 1, None)


def _md_figure(figure: Figure) -> str:
    if figure.png_path is None:
        return f"**{_md(figure.kind)}:** _{_md(figure.empty_text or '')}_"
    return f"![{_md(figure.alt)}]({_href(figure.png_path)})\n\n_{_md(figure.caption)}_"


def _join_blocks(blocks: Iterable[list[str]]) -> list[str]:
    """Blocks separated by one blank line."""
    out: list[str] = []
    for lines in blocks:
        if not lines:
            continue
        if out:
            out.append("")
        out += lines
    return out


def _md_heading(section: Section, depth: int) -> str:
    title = _md_content(section.title)
    badges = ", ".join(_md(badge.words) for badge in section.badges)
    return "#" * min(depth + 1, 6) + f" {title}" + (f" ({badges})" if badges else "")


def _md_section(section: Section, depth: int, anchor: str | None) -> list[str]:
    head = ([f'<a id="{_e(anchor)}"></a>', ""] if anchor else []) + [_md_heading(section, depth)]
    return _join_blocks([head, *(_md_block(block, depth) for block in section.blocks)])


def render_markdown(document: Document) -> str:
    """The document as Markdown (GitHub's dialect): the same sections, facts and tables, plots as PNG links."""
    anchors = section_anchors(document)
    verdict = f" {_md(document.verdict.words)}" if document.verdict else ""
    head = [f"# {_md(document.title)}{verdict}"]
    facts = [f"- **{_md(k)}:** {_md_content(v)}" for k, v in document.facts]
    footer = _md_content(document.footer)
    out = _join_blocks(
        [
            head,
            facts,
            *(_md_section(s, 1, a) for s, a in zip(document.sections, anchors, strict=True)),
            [f"_{footer}_"] if footer else [],
        ]
    )
    return "\n".join(out) + "\n"
