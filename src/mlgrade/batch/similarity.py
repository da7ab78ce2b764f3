"""Copied-submission flags: identical files, and near-identical code after normalisation.

A learner's own code is the code cells of their notebook minus what the starter notebook
already held (cells and lines copied from it are dropped). That code is normalised with the
standard library's :mod:`tokenize`: comments, blank lines and indentation whitespace go; every
name that is not a keyword, a builtin or an attribute (variables, functions, parameters, module
aliases) is renamed ``v1``, ``v2`` ... in order of first appearance in its cell, so renaming variables
changes nothing, while library calls (``.exp``, ``len``) stay as written. Two submissions are
compared by the Jaccard index of their token 5-grams, as MOSS-style tools do.

The flags are information for the lead: they never change a score. The notebook is parsed,
never run, and the parsing is bounded (size cap, any failure means "no fingerprint").
"""

from __future__ import annotations

import builtins
import io
import json
import keyword
import tokenize
from dataclasses import dataclass
from itertools import combinations
from typing import Any

K = 5  # tokens per shingle
NEAR_THRESHOLD = 0.8  # Jaccard similarity from which two submissions are flagged
MIN_TOKENS = 20  # less own code than this (a blank starter) is never compared
MAX_CODE_CHARS = 200_000  # fingerprint at most this much of a notebook's code

_BUILTINS = frozenset(dir(builtins))
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
         tokenize.ENCODING, tokenize.ENDMARKER}


@dataclass(frozen=True)
class Pair:
    """Two learners whose submissions look copied."""

    learner_a: str
    learner_b: str
    similarity: float  # 1.0 for identical files
    kind: str  # "identical file" or "near-identical code"


def _code_cells(notebook: dict[str, Any]) -> list[str]:
    cells = notebook.get("cells", []) if isinstance(notebook, dict) else []
    out = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        out.append("".join(source) if isinstance(source, list) else str(source))
    return out


def _plain_lines(source: str) -> list[str]:
    """Lines of Python, without IPython magics and shell escapes (which do not parse)."""
    return [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]


def _starter_lines(starter: bytes | None) -> set[str]:
    if not starter:
        return set()
    try:
        cells = _code_cells(json.loads(starter))
    except (ValueError, UnicodeDecodeError):
        return set()
    return {line.strip() for cell in cells for line in cell.splitlines() if line.strip()}


def own_code(notebook: bytes, starter: bytes | None) -> list[str]:
    """The learner's code, cell by cell, without the lines the starter already holds."""
    try:
        cells = _code_cells(json.loads(notebook))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    given = _starter_lines(starter)
    kept: list[str] = []
    budget = MAX_CODE_CHARS
    for cell in cells:
        lines = [line for line in _plain_lines(cell) if line.strip() not in given]
        if any(line.strip() for line in lines) and budget > 0:
            kept.append("\n".join(lines)[:budget])
            budget -= len(kept[-1])
    return kept


def _tokens(cell: str) -> list[tokenize.TokenInfo]:
    try:
        return list(tokenize.generate_tokens(io.StringIO(cell + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError, ValueError, RecursionError):
        # an unfinished cell: fall back to its words, still good enough for shingles
        return [tokenize.TokenInfo(tokenize.NAME if w.isidentifier() else tokenize.OP, w,
                                   (0, 0), (0, 0), "") for w in cell.split()]


def normalised_tokens(notebook: bytes, starter: bytes | None) -> str:
    """The fingerprint stored in the gradebook: the learner's own code as canonical tokens,
    space-separated (string literals become ``STR`` so print texts do not count)."""
    out: list[str] = []
    for cell in own_code(notebook, starter):
        # numbered afresh in each cell: a name added in one cell shifts no other cell
        canonical: dict[str, str] = {}
        previous = ""
        for tok in _tokens(cell):
            if tok.type in _SKIP:
                continue
            text = tok.string
            if (tok.type == tokenize.NAME and not keyword.iskeyword(text) and previous != "."
                    and text not in _BUILTINS):
                # the learner's names (and module aliases): what a copier renames
                text = canonical.setdefault(text, f"v{len(canonical) + 1}")
            elif tok.type == tokenize.STRING:
                text = "STR"
            out.append(text)
            previous = tok.string
    return " ".join(out)


def _shingles(tokens: str) -> set[tuple[str, ...]]:
    words = tokens.split()
    if len(words) < K:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + K]) for i in range(len(words) - K + 1)}


def jaccard(a: str, b: str) -> float:
    """Similarity of two fingerprints: shared 5-grams over all 5-grams (0 to 1)."""
    sa, sb = _shingles(a), _shingles(b)
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def copied_pairs(items: list[tuple[str, str, str]],
                 threshold: float = NEAR_THRESHOLD) -> list[Pair]:
    """Flag pairs among ``(learner, content_hash, fingerprint)``, most similar first.

    Submissions with almost no own code (an untouched starter) are left out: two blank
    notebooks are not a copy.
    """
    usable = [(who, digest, tokens) for who, digest, tokens in items
              if len(tokens.split()) >= MIN_TOKENS]
    pairs = []
    for (a, ha, ta), (b, hb, tb) in combinations(usable, 2):
        if ha == hb:
            pairs.append(Pair(a, b, 1.0, "identical file"))
            continue
        score = jaccard(ta, tb)
        if score >= threshold:
            pairs.append(Pair(a, b, round(score, 3), "near-identical code"))
    return sorted(pairs, key=lambda p: (-p.similarity, p.learner_a.casefold(),
                                        p.learner_b.casefold()))
