"""Inline Markdown in grader-written text: test titles, question titles and feedback.

Graders write code in backticks (```model` is fitted``); a report shows it as code, not as
literal backticks. The text is parsed by markdown-it-py with only code spans and line breaks
enabled: raw HTML is off (``<b>`` is text, escaped), and so are links, images and emphasis,
which would fetch resources or mangle values that graders quote (``a[i]*b[i]``,
``best_params_``). Learner-derived values inside feedback therefore stay text in every format.

* :func:`to_html`: an HTML fragment, every character outside the markup escaped;
* :func:`to_markdown`: GitHub-flavoured Markdown that shows the same thing: code spans kept
  (fenced with enough backticks), everything else escaped; safe inside a GFM table cell.
"""

from __future__ import annotations

from functools import cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

# characters that would start Markdown or HTML markup (or end a GFM table cell) in plain text
_MD_SPECIAL = ("\\", "|", "<", ">", "`", "*", "_", "[", "]", "#", "~", "&")


@cache
def _parser() -> MarkdownIt:
    # "zero": every rule off; html=False keeps raw HTML out even if a rule were enabled later
    return MarkdownIt("zero", {"html": False, "breaks": True}).enable(["backticks", "newline"])


def _tokens(text: str) -> list[Token]:
    blocks = _parser().parseInline(text)
    return list(blocks[0].children or []) if blocks else []


def to_html(text: str) -> str:
    """``text`` as an inline HTML fragment: code spans as ``<code>``, line breaks as ``<br>``,
    everything else escaped (quotes too: safe inside an attribute)."""
    return str(_parser().renderInline(text))


def escape_markdown(text: str) -> str:
    """Plain text that GFM shows as written, on one line inside a table cell."""
    for ch in _MD_SPECIAL:
        text = text.replace(ch, "\\" + ch)
    return text


def _code_span(code: str) -> str:
    """A GFM code span holding ``code`` exactly: a fence longer than any run of backticks in
    it, padded where it starts or ends with a backtick; a pipe escaped for GFM tables (GFM
    removes that backslash before parsing the cell)."""
    longest = run = 0
    for ch in code:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if code.startswith("`") or code.endswith("`") else ""
    return f"{fence}{pad}{code.replace('|', chr(92) + '|')}{pad}{fence}"


def to_markdown(text: str) -> str:
    """``text`` as valid one-line GFM: code spans stay code spans, the rest is escaped."""
    parts = []
    for token in _tokens(" ".join(text.split())):
        if token.type == "code_inline":
            parts.append(_code_span(token.content))
        elif token.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        else:
            parts.append(escape_markdown(token.content))
    return "".join(parts)
