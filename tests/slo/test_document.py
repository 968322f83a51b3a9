"""The report document model (`slo.document`): what its HTML and Markdown renderers promise every report.

Each test builds a small `Document` by hand and reads the two renderings as text: hostile text in
any place the model holds text is shown, never interpreted; Markdown tables keep their columns;
figures carry their SVG, PNG link, alt text and caption; section anchors are unique and stable.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from slo.document import (
    Cell,
    Details,
    Document,
    Facts,
    Figure,
    Figures,
    Gauge,
    LineBreak,
    Link,
    Paragraph,
    Pill,
    Row,
    Section,
    Table,
    Text,
    Time,
    format_burn,
    format_duration_short,
    render_html,
    render_markdown,
    section_anchors,
    unique_slugs,
)

HOSTILE = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><path id="p1" d="M0 0 L10 10"/></svg>'
T = 1_767_261_600.0  # 2026-01-01 10:00:00 UTC


def _figure(**changes: object) -> Figure:
    values: dict[str, object] = {
        "kind": "burn-rate",
        "caption": "Burn rate over the day",
        "alt": "burn-rate plot of payments",
        "svg": SVG,
        "png_path": "plots/payments-burn-rate.png",
        "wide": False,
        "data": (("slo", "payments-availability"),),
    }
    values.update(changes)
    return Figure(**values)  # type: ignore[arg-type]


def _hostile_document() -> Document:
    """The hostile string in every place a document holds text."""
    table = Table(
        [HOSTILE, "b"],
        [
            Row([HOSTILE, Cell(HOSTILE, tone="hot")], tone="fail"),
            [Text(HOSTILE, "code"), Text(HOSTILE, "strong")],
            [Text(HOSTILE, "muted"), Text(HOSTILE, "emphasis")],
            [Pill(HOSTILE, "failed"), Time(None, HOSTILE)],
            [Link(HOSTILE, HOSTILE), Link("a.json", HOSTILE, code=True)],
            [Details(HOSTILE, f"line one\n{HOSTILE}"), (Text(HOSTILE), LineBreak(), Text(HOSTILE))],
        ],
    )
    section = Section(
        title=(Text(HOSTILE, "muted"), Text(HOSTILE)),
        badges=[Pill(HOSTILE, "passed")],
        blocks=[
            Paragraph(HOSTILE, "description"),
            Section(HOSTILE, [Facts([(HOSTILE, HOSTILE)]), table]),
            Section("Empty", [Table(["a"], [], empty=HOSTILE)], layout="wide-card"),
            Figures(
                [
                    _figure(caption=HOSTILE, alt=HOSTILE, data=(("slo", HOSTILE),)),
                    _figure(svg=None, png_path=None, kind=HOSTILE, empty_text=HOSTILE),
                ]
            ),
        ],
    )
    return Document(
        title=HOSTILE,
        verdict=Pill(HOSTILE, "failed"),
        generator=HOSTILE,
        facts=[(HOSTILE, HOSTILE), ("when", Time(T))],
        sections=[section],
        footer=(Text(HOSTILE), Text(HOSTILE, "code")),
    )


class _Nesting(HTMLParser):
    """Every element closed, in order (void elements aside); the tags seen."""

    VOID = frozenset({"meta", "br", "path"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.tags: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.errors.append(tag)


def _nesting(page: str) -> _Nesting:
    parser = _Nesting()
    parser.feed(page)
    parser.close()
    return parser


# --- escaping -------------------------------------------------------------------------------------


def test_html_escapes_hostile_text_in_every_part_of_the_model() -> None:
    page = render_html(_hostile_document())
    assert "<script" not in page
    assert page.count(ESCAPED) >= 25  # every text place, the page title and the generator included
    assert _nesting(page).errors == []


def test_html_drops_markup_from_css_tones() -> None:
    page = render_html(Document("t", [Section("s", [Paragraph(Pill("words", 'x" onclick="alert(1)'))])]))
    assert "onclick=" not in page
    assert '<span class="pill x onclickalert1">words</span>' in page


def test_html_link_targets_cannot_leave_their_attribute() -> None:
    page = render_html(Document("t", [Section("s", [Paragraph(Link('a" onmouseover="x.json', "text"))])]))
    assert 'href="a%22%20onmouseover=%22x.json"' in page


def test_markdown_escapes_hostile_text_in_every_part_of_the_model() -> None:
    text = render_markdown(_hostile_document())
    assert "<script" not in text
    assert "&lt;script&gt;" in text


def test_markdown_keeps_a_lone_ampersand_but_escapes_one_that_starts_a_character_reference() -> None:
    text = render_markdown(Document("t", [Section("s", [Paragraph("1h & 5m; &lt; is not <")])]))
    assert "1h & 5m; &amp;lt; is not &lt;" in text


def test_markdown_table_escapes_pipes_and_keeps_its_columns() -> None:
    table = Table(["a|b", "c"], [["x | y", Text("p|q", "code")], [("one\ntwo"), Pill("|", "failed")]])
    text = render_markdown(Document("t", [Section("s", [table])]))
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert lines[0] == r"| a\|b | c |"
    assert lines[2] == r"| x \| y | p\|q |"
    assert lines[3] == r"| one two | **\|** |"
    for line in lines:
        assert len(re.split(r"(?<!\\)\|", line)) == 4  # two columns: the unescaped pipes are the borders


def test_markdown_quotes_what_would_start_a_heading_list_or_quote() -> None:
    text = render_markdown(Document("t", [Section("s", [Paragraph("# not a heading"), Paragraph("- not a list")])]))
    assert "\\# not a heading" in text and "\\- not a list" in text


def test_markdown_shows_only_plain_identifiers_as_code_spans() -> None:
    table = Table(["a"], [[Text("payments-availability", "code")], [Text("a `b` c", "code")]])
    text = render_markdown(Document("t", [Section("s", [table])]))
    assert "| `payments-availability` |" in text
    assert r"| a \`b\` c |" in text


# --- verdicts and emphasis ------------------------------------------------------------------------


def test_failing_pills_and_hot_cells_are_bold_in_markdown_and_passing_ones_are_not() -> None:
    table = Table(["a", "b", "c"], [[Pill("FAIL", "failed"), Pill("PASS", "passed"), Cell("9.00x", "hot")]])
    text = render_markdown(Document("t", [Section("s", [table])]))
    assert "| **FAIL** | PASS | **9.00x** |" in text


def test_html_marks_row_and_cell_tones_and_numeric_columns() -> None:
    table = Table(["name", "burn"], [Row(["x", Cell("9.00x", "hot")], tone="fail")], numeric=frozenset({1}))
    page = render_html(Document("t", [Section("s", [table])]))
    assert '<th>name</th><th class="num">burn</th>' in page
    assert '<tr class="fail"><td>x</td><td class="num hot">9.00x</td></tr>' in page


def test_document_verdict_heads_both_renderings() -> None:
    document = Document("Game day", [], verdict=Pill("FAILED", "failed"))
    page = render_html(document)
    assert '<header class="page verdict-failed">' in page
    assert '<h1>Game day <span class="verdict">FAILED</span></h1>' in page
    assert "<title>Game day FAILED</title>" in page
    assert render_markdown(document).startswith("# Game day FAILED\n")


def test_empty_table_says_so_instead_of_an_empty_grid() -> None:
    document = Document("t", [Section("s", [Table(["a"], [], empty="No alert fired.")])])
    assert '<p class="none">No alert fired.</p>' in render_html(document)
    assert "<table" not in render_html(document).split("<main>", 1)[1]
    assert "No alert fired." in render_markdown(document)


def test_time_is_a_time_element_in_html_and_text_in_markdown() -> None:
    document = Document("t", [], facts=[("At", Time(T)), ("End", Time(None, "still firing"))])
    page = render_html(document)
    assert '<dd><time datetime="2026-01-01T10:00:00Z">2026-01-01 10:00 UTC</time></dd>' in page
    assert "<dd>still firing</dd>" in page
    assert "- **At:** 2026-01-01 10:00 UTC" in render_markdown(document)


def test_gauge_and_details_are_page_only_decoration_that_markdown_folds_or_drops() -> None:
    table = Table(["budget", "page"], [[(Gauge(0.25, "warn"), Text("25.0%")), Details("text", "first\nsecond")]])
    document = Document("t", [Section("s", [table])])
    page = render_html(document)
    assert '<span class="gauge warn" aria-hidden="true"><span style="width:25.0%"></span></span>25.0%' in page
    assert "<pre>first\nsecond</pre>" in page
    assert "| 25.0% | <details><summary>text</summary>first<br>second</details> |" in render_markdown(document)


# --- figures --------------------------------------------------------------------------------------


def test_figure_is_inline_svg_with_its_caption_as_label_in_html() -> None:
    page = render_html(Document("t", [Section("s", [Figures([_figure()])])]))
    assert (
        '<figure class="plot" data-plot="burn-rate" data-slo="payments-availability">'
        '<svg role="img" aria-label="Burn rate over the day" xmlns=' in page
    )
    assert "<figcaption>Burn rate over the day</figcaption></figure>" in page
    assert "<img" not in page


def test_figure_is_a_png_link_with_alt_text_and_caption_in_markdown() -> None:
    text = render_markdown(Document("t", [Section("s", [Figures([_figure()])])]))
    assert "![burn-rate plot of payments](plots/payments-burn-rate.png)\n\n_Burn rate over the day_" in text
    assert "<svg" not in text


def test_figure_without_a_drawing_says_why_in_both_renderings() -> None:
    empty = _figure(svg=None, png_path=None, kind="latency", empty_text="No latency series for this SLO.")
    document = Document("t", [Section("s", [Figures([empty])])])
    page = render_html(document)
    assert '<figure class="plot empty" data-plot="latency"' in page
    assert '<p class="plot-empty">No latency series for this SLO.</p>' in page
    assert "**latency:** _No latency series for this SLO._" in render_markdown(document)


def test_figure_png_path_is_percent_encoded_in_the_markdown_link() -> None:
    text = render_markdown(Document("t", [Section("s", [Figures([_figure(png_path="plots/a b(1).png")])])]))
    assert "](plots/a%20b%281%29.png)" in text


def test_wide_figures_span_the_row() -> None:
    page = render_html(Document("t", [Section("s", [Figures([_figure(wide=True)])])]))
    assert '<figure class="plot full"' in page


# --- sections and anchors -------------------------------------------------------------------------


def test_duplicate_section_titles_get_numbered_anchors_in_document_order() -> None:
    document = Document("t", [Section("Alerts"), Section("Alerts"), Section("Alerts")])
    assert section_anchors(document) == ["alerts", "alerts-2", "alerts-3"]
    page, text = render_html(document), render_markdown(document)
    for anchor in ("alerts", "alerts-2", "alerts-3"):
        assert f'id="{anchor}"' in page
        assert f'<a id="{anchor}"></a>' in text


def test_anchors_are_stable_across_renderings() -> None:
    document = Document("t", [Section("Load & latency"), Section("Load & latency")])
    assert render_html(document) == render_html(document)
    assert section_anchors(document) == ["load_latency", "load_latency-2"]


def test_a_title_slug_never_takes_an_anchor_given_to_a_later_section() -> None:
    document = Document("t", [Section("Phases"), Section("Summary", anchor="phases")])
    assert section_anchors(document) == ["phases-2", "phases"]


def test_two_sections_given_the_same_anchor_are_refused() -> None:
    with pytest.raises(ValueError, match="two sections share an anchor"):
        render_html(Document("t", [Section("a", anchor="x"), Section("b", anchor="x")]))


def test_section_links_point_at_anchors_in_both_renderings() -> None:
    contents = Section("Contents", [Table(["SLO"], [[Link("#slo-payments", "payments")]])])
    document = Document("t", [contents, Section("Payments", anchor="slo-payments")])
    assert '<a href="#slo-payments">payments</a>' in render_html(document)
    assert "[payments](#slo-payments)" in render_markdown(document)


def test_nested_sections_are_cards_on_the_page_and_deeper_headings_in_markdown() -> None:
    inner = Section("Alert conditions", [Paragraph("clear")], layout="plain")
    document = Document(
        "t",
        [Section("SLO", [Section("Summary", [Facts([("a", "1")])]), Section("Burn", [inner], layout="wide-card")])],
    )
    page = render_html(document)
    assert '<div class="cards"><div class="card"><h3>Summary</h3>' in page
    assert '<div class="card full"><h3>Burn</h3><h3>Alert conditions</h3>' in page.replace("\n", "")
    text = render_markdown(document)
    assert "## SLO\n" in text and "### Summary\n" in text and "#### Alert conditions\n" in text
    assert "| a | 1 |" in text


def test_section_badges_follow_the_title() -> None:
    document = Document("t", [Section("Baseline", badges=[Pill("passed", "passed")])])
    assert '<h2>Baseline <span class="pill passed">passed</span></h2>' in render_html(document)
    assert "## Baseline (passed)" in render_markdown(document)


# --- how values read ------------------------------------------------------------------------------


def test_burn_rates_read_with_two_decimals_below_100x_and_whole_above() -> None:
    assert [format_burn(r) for r in (None, 0.5, 14.4, 99.994, 512.4)] == ["—", "0.50x", "14.40x", "99.99x", "512x"]


def test_short_durations_round_to_whole_seconds() -> None:
    assert [format_duration_short(s) for s in (-1.0, 0.4, 200.0, 3600.0)] == ["0s", "0s", "3m20s", "1h"]


def test_unique_slugs_are_safe_and_distinct() -> None:
    assert unique_slugs(["../../etc/passwd", "a b", "a b", "", "A"]) == ["etc_passwd", "a_b", "a_b-2", "section", "A"]
    assert unique_slugs(["A", "a"], lower=True) == ["a", "a-2"]
