"""Grader-written Markdown (code spans in titles and feedback) in the HTML and Markdown reports:
shown as code, never as literal backticks, while learner-derived text stays inert text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt
from tests.render.canned import CASES, LONG_MESSAGE, STARTED, TYPICAL

from mlgrade.render import html, markdown
from mlgrade.render.inline import to_html, to_markdown


class _Tags(HTMLParser):
    """The tags and the text of an HTML document, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.code: list[str] = []
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_code = tag == "code"

    def handle_endtag(self, tag: str) -> None:
        self._in_code = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_code:
            self.code.append(data)


def _parse(page: str) -> _Tags:
    tags = _Tags()
    tags.feed(page)
    return tags


def _gfm(text: str) -> str:
    """GitHub-flavoured Markdown to HTML (CommonMark plus tables), as a viewer renders it."""
    return str(MarkdownIt("commonmark").enable("table").render(text))


def test_html_shows_code_spans_as_code_in_titles_and_feedback() -> None:
    page = html.render(STARTED)
    parsed = _parse(page)
    assert "prediction" in parsed.code and "sigmoid(...)" in parsed.code
    table = page[page.index("<table>"):page.index("</table>")]
    assert "`" not in table  # no literal backtick left in the tests table


@pytest.mark.parametrize("render", [html.render, lambda r: html.fragment(r, "self-check")],
                         ids=["page", "fragment"])
def test_html_learner_text_never_becomes_markup(render) -> None:  # type: ignore[no-untyped-def]
    page = render(LONG_MESSAGE)
    tags = set(_parse(page).tags)
    # only mlgrade's own tags: the hostile <b>, links, emphasis and images stay text
    assert tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "strong",
                    "table", "thead", "tbody", "tr", "th", "td", "code", "br", "ul", "li",
                    "footer", "div"}
    assert "<b>" not in page and "<a " not in page and "<em>" not in page
    assert "&lt;b&gt;html&lt;/b&gt;" in page and "*star* _under_ [link](x)" in page


def test_the_in_notebook_report_ends_with_the_run_details() -> None:
    fragment = html.fragment(TYPICAL, "self-check of month2")
    text = " ".join("".join(_parse(fragment).text).split())
    assert ("9/9 code cells run · 7.2 s · seed 20260101 · isolation process · mlgrade 0.1.0 · "
            "graders 0123456789abcdef") in text
    # a self-check runs no cells: no "0/0 code cells run"
    from dataclasses import replace

    from mlgrade.results import Execution

    none_run = html.fragment(replace(TYPICAL, execution=Execution(0, 0)), "self-check")
    assert "code cells run" not in none_run and "seed 20260101" in none_run


@pytest.mark.parametrize("case", sorted(CASES))
def test_markdown_is_valid_gfm_with_code_spans(case: str) -> None:
    text = markdown.render(CASES[case])
    rendered = _gfm(text)
    parsed = _parse(rendered)
    # every table keeps its columns on every row, whatever the text held
    for table in re.findall(r"<table>(.*?)</table>", rendered, flags=re.S):
        widths = {row.count("<td") + row.count("<th")
                  for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)}
        assert widths in ({5}, {3})  # the tests table, the cells table
    assert not {"a", "em", "img", "b", "script"} & set(parsed.tags)
    if CASES[case].tests and case != "long_message":
        assert "`" not in "".join(parsed.text).split("Cells that raised")[0]


def test_markdown_reads_back_as_written() -> None:
    rendered = _gfm(markdown.render(STARTED))
    assert "<code>prediction</code> is the weighted sum" in rendered
    hostile = _parse(_gfm(markdown.render(LONG_MESSAGE)))
    assert "<code>tick</code>" not in "".join(hostile.text)
    joined = " ".join("".join(hostile.text).split())
    assert '| pipe | <b>html</b> & "quotes"' in joined and "*star* _under_ [link](x)" in joined


@pytest.mark.parametrize(("source", "code"), [
    ("`a|b` and `` `x` ``", ["a|b", "`x`"]),
    ("`a``b` <i>x</i>", ["a``b"]),
    ("unpaired ` tick & *no* emphasis", []),
])
def test_inline_round_trips_through_a_gfm_table(source: str, code: list[str]) -> None:
    assert _parse(to_html(source)).code == code
    table = _gfm(f"| h |\n| --- |\n| {to_markdown(source)} |\n")
    cells = re.findall(r"<td>(.*?)</td>", table, flags=re.S)
    assert len(cells) == 1
    parsed = _parse(cells[0])
    assert parsed.code == code
    assert set(parsed.tags) <= {"code"}
    assert " ".join("".join(parsed.text).split()) == " ".join(
        "".join(_parse(to_html(source)).text).split())
