"""A lint of grader source: expected values must not come from learner calls.

A grader that computes its *expected* value by calling another learner function lets a
mistake shared by both cancel out (a training function that ignores its regularisation
argument, checked against the learner's own loss). This is a small taint analysis over the
AST of each grader file:

- **sources**: the results of ``nb.call``, ``nb.get``, ``nb.eval``, ``nb.eval_untrusted``,
  ``nb.describe``, ``nb.read_file`` and ``nb.read_npy`` are learner data (tainted), labelled by
  the learner name they read (``call:predict``); so is whatever a helper the lint cannot see
  into returns when it is handed ``nb`` (labelled by the helper's name);
- **propagation**: a name assigned from a tainted expression is tainted; any expression built
  from a tainted part is tainted (calls, attributes, subscripts, arithmetic, comprehensions);
  tuples keep a taint per item, so ``df, got = helper(nb, rng)`` taints only ``got`` when the
  helper returns ``df, nb.call(...)``; the grader file's own functions, and those it imports
  from its own folder, are followed with the taint of their arguments;
- **sinks**: the ``expected`` argument of ``expect_close`` / ``expect_equal`` when it carries
  learner data that the ``actual`` argument does not (a value from *another* learner call), and
  comparisons inside ``expect(...)`` or ``assert`` (``==``, ``!=``, ``<``, ``<=``, ...; and a
  difference ``a - b`` inside one, as in ``abs(a - b) < eps``) and tolerance calls
  (``isclose``, ``allclose``, ``assert_allclose``, ``approx``, ...) whose operands come from
  different learner names. Each taint remembers which learner names it came from, so a
  consistency check within one answer (``len(set(rows)) == len(rows)``) or a determinism check
  of one function (two calls of ``train_model`` compared) is not flagged.

A lead's own grader may mark a deliberate use on the sink's line with
``# mlgrade: learner-expected-ok (why)``; mlgrade's bundled graders allow no pragma
(``pragmas=False``). The analysis is flow-insensitive within branches and approximate by
design: it looks for the pattern, it proves nothing.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Union

SOURCES = frozenset({"call", "get", "eval", "eval_untrusted", "describe", "read_file",
                     "read_npy"})
SINKS = {"expect_close": 1, "expect_equal": 1}  # name -> position of the expected argument
CLOSE_CALLS = frozenset({"isclose", "allclose", "assert_allclose", "approx", "array_equal",
                         "array_equiv", "assert_array_equal", "assert_array_almost_equal",
                         "assert_almost_equal", "assert_equal", "equal", "equals"})
NOTEBOOK = "nb"  # the fixture through which graders reach the learner's kernel
PRAGMA = "mlgrade: learner-expected-ok"
MAX_DEPTH = 8  # how deep the file's own helpers are followed

Labels = frozenset[str]  # the nb.* calls (line:column) a value is derived from
Taint = Union[Labels, tuple["Taint", ...]]  # noqa: UP007 - a recursive alias, also on 3.10
CLEAN: Labels = frozenset()


@dataclass(frozen=True)
class Finding:
    """One expected value (or comparison) that comes from a learner call."""

    file: str
    line: int
    function: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} ({self.function}): {self.message}"


def _any(t: Taint) -> Labels:
    """Every label anywhere in ``t`` (a tuple's items joined)."""
    if isinstance(t, tuple):
        out: Labels = CLEAN
        for x in t:
            out = out | _any(x)
        return out
    return t


def _join(a: Taint, b: Taint) -> Taint:
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return tuple(_join(x, y) for x, y in zip(a, b, strict=True))
    return _any(a) | _any(b)


def _union(parts: list[Labels]) -> Labels:
    out: Labels = CLEAN
    for part in parts:
        out = out | part
    return out


def _imported_functions(path: Path, tree: ast.Module) -> dict[str, ast.FunctionDef]:
    """Functions that ``tree`` imports from modules in its own folder (``from helpers import
    f``), so that the taint is followed into them."""
    out: dict[str, ast.FunctionDef] = {}
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        module = path.parent / (node.module.replace(".", "/") + ".py")
        if not module.is_file():
            continue
        try:
            defs = {n.name: n for n in ast.parse(module.read_text(encoding="utf-8")).body
                    if isinstance(n, ast.FunctionDef)}
        except (OSError, UnicodeDecodeError, SyntaxError):
            continue
        for alias in node.names:
            if alias.name in defs:
                out[alias.asname or alias.name] = defs[alias.name]
    return out


def _is_fixture(fn: ast.FunctionDef) -> bool:
    for deco in fn.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if (isinstance(target, ast.Attribute) and target.attr == "fixture") or (
                isinstance(target, ast.Name) and target.id == "fixture"):
            return True
    return False


def _source_label(node: ast.Call, name: str, args: list[ast.expr] | None = None) -> str:
    """The label of a learner value: the learner name it reads when the call names it with a
    literal first argument (``call:predict``; ``args``: the arguments that count, default the
    call's own), else the call's own position."""
    args = node.args if args is None else args
    first = args[0] if args else None
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return f"{name}:{first.value}"
    return f"{name}@{node.lineno}:{node.col_offset}"


class _FileLint:
    def __init__(self, path: Path, tree: ast.Module, lines: list[str],
                 pragmas: bool = True) -> None:
        self.path, self.lines, self.pragmas = path, lines, pragmas
        self.functions = _imported_functions(path, tree)
        self.functions.update({n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)})
        self.findings: dict[tuple[int, str], Finding] = {}
        self._memo: dict[tuple[str, tuple[Labels, ...]], Taint] = {}
        self._stack: list[str] = []

    # -- functions ------------------------------------------------------------------------
    def function(self, fn: ast.FunctionDef, args: tuple[Labels, ...]) -> Taint:
        key = (fn.name, args)
        if key in self._memo:
            return self._memo[key]
        if fn.name in self._stack or len(self._stack) >= MAX_DEPTH:
            return _union(list(args))
        self._memo[key] = _union(list(args))  # provisional, for recursion
        self._stack.append(fn.name)
        try:
            params = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)]
            env: dict[str, Taint] = {p: (args[i] if i < len(args) else CLEAN)
                                     for i, p in enumerate(params)}
            returns: list[Taint] = []
            for _ in range(2):  # twice: taint that flows around a loop reaches earlier lines
                self._block(fn.body, env, returns, fn.name)
            result: Taint = CLEAN
            for i, r in enumerate(returns):
                result = r if i == 0 else _join(result, r)
        finally:
            self._stack.pop()
        self._memo[key] = result
        return result

    def fixture_args(self, fn: ast.FunctionDef, depth: int = 0) -> tuple[Labels, ...]:
        """The taint of each parameter of a test (or fixture): a fixture of this file carries
        what its own body returns or yields."""
        out = []
        for a in fn.args.args:
            fixture = self.functions.get(a.arg)
            if fixture is None or not _is_fixture(fixture) or depth >= MAX_DEPTH:
                out.append(CLEAN)
            else:
                out.append(_any(self.function(fixture, self.fixture_args(fixture, depth + 1))))
        return tuple(out)

    # -- statements -----------------------------------------------------------------------
    def _block(self, body: list[ast.stmt], env: dict[str, Taint], returns: list[Taint],
               where: str) -> None:
        for stmt in body:
            self._stmt(stmt, env, returns, where)

    def _stmt(self, stmt: ast.stmt, env: dict[str, Taint], returns: list[Taint],
              where: str) -> None:
        if isinstance(stmt, ast.Assign):
            value = self.expr(stmt.value, env, where)
            for target in stmt.targets:
                self._bind(target, value, env, where)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self._bind(stmt.target, self.expr(stmt.value, env, where), env, where)
        elif isinstance(stmt, ast.AugAssign):
            value = _any(self.expr(stmt.value, env, where))
            self._bind(stmt.target, value | _any(self.expr(stmt.target, env, where)), env, where)
        elif isinstance(stmt, ast.Return):
            returns.append(self.expr(stmt.value, env, where) if stmt.value else CLEAN)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            self._bind(stmt.target, _any(self.expr(stmt.iter, env, where)), env, where)
            for _ in range(2):
                self._block(stmt.body, env, returns, where)
            self._block(stmt.orelse, env, returns, where)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                value = self.expr(item.context_expr, env, where)
                if item.optional_vars is not None:
                    self._bind(item.optional_vars, value, env, where)
            self._block(stmt.body, env, returns, where)
        elif isinstance(stmt, (ast.If, ast.While)):
            self.expr(stmt.test, env, where)
            self._block(stmt.body, env, returns, where)
            self._block(stmt.orelse, env, returns, where)
        elif isinstance(stmt, ast.Try):
            self._block(stmt.body, env, returns, where)
            for handler in stmt.handlers:
                if handler.name:
                    env[handler.name] = CLEAN
                self._block(handler.body, env, returns, where)
            self._block(stmt.orelse, env, returns, where)
            self._block(stmt.finalbody, env, returns, where)
        elif isinstance(stmt, ast.Assert):
            self._comparison(stmt.test, env, where)
            self.expr(stmt.test, env, where)
        elif isinstance(stmt, ast.Expr):
            if isinstance(stmt.value, (ast.Yield, ast.YieldFrom)):  # a fixture's value
                returns.append(self.expr(stmt.value.value, env, where))
            else:
                self.expr(stmt.value, env, where)

    def _bind(self, target: ast.expr, value: Taint, env: dict[str, Taint], where: str) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = target.elts
            if isinstance(value, tuple) and len(value) == len(items):
                for item, v in zip(items, value, strict=True):
                    self._bind(item, v, env, where)
            else:
                for item in items:
                    self._bind(item, _any(value), env, where)
        elif isinstance(target, ast.Starred):
            self._bind(target.value, _any(value), env, where)
        elif isinstance(target, (ast.Subscript, ast.Attribute)):
            base = target.value
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name) and _any(value):  # out[col] = tainted taints out
                env[base.id] = _any(env.get(base.id, CLEAN)) | _any(value)

    # -- expressions ----------------------------------------------------------------------
    def expr(self, node: ast.expr | None, env: dict[str, Taint], where: str) -> Taint:
        if node is None:
            return CLEAN
        if isinstance(node, ast.Name):
            return env.get(node.id, CLEAN)
        if isinstance(node, ast.Tuple):
            return tuple(self.expr(e, env, where) for e in node.elts)
        if isinstance(node, ast.Subscript):
            base = self.expr(node.value, env, where)
            index = self.expr(node.slice, env, where)
            if (isinstance(base, tuple) and isinstance(node.slice, ast.Constant)
                    and isinstance(node.slice.value, int) and -len(base) <= node.slice.value < len(base)):
                return base[node.slice.value]
            return _any(base) | _any(index)
        if isinstance(node, ast.Call):
            return self._call(node, env, where)
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            inner = dict(env)
            tainted: Labels = CLEAN
            for gen in node.generators:
                it = _any(self.expr(gen.iter, inner, where))
                self._bind(gen.target, it, inner, where)
                tainted = tainted | it
                for cond in gen.ifs:
                    self.expr(cond, inner, where)
            parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            return tainted | _union([_any(self.expr(p, inner, where)) for p in parts])
        if isinstance(node, ast.Lambda):  # what it captures flows into what it returns
            inner = dict(env)
            for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs):
                inner[a.arg] = CLEAN
            return _any(self.expr(node.body, inner, where))
        found: Labels = CLEAN
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                found = found | _any(self.expr(child, env, where))
        return found

    def _call(self, node: ast.Call, env: dict[str, Taint], where: str) -> Taint:
        func = node.func
        args = [_any(self.expr(a, env, where)) for a in node.args]
        kwargs = {k.arg: _any(self.expr(k.value, env, where)) for k in node.keywords}
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(
            func, ast.Attribute) else None
        if name in SINKS:
            self._sink(node, name, env, where)
        if name == "expect" and node.args:
            self._comparison(node.args[0], env, where)
        if name in CLOSE_CALLS and len(node.args) >= 2:
            self._differ(node, [_any(self.expr(a, env, where)) for a in node.args[:2]], where,
                         f"both arguments of {name}() come from learner calls")
        if (isinstance(func, ast.Attribute) and func.attr in SOURCES
                and isinstance(func.value, ast.Name) and func.value.id == NOTEBOOK):
            return frozenset({_source_label(node, func.attr)})
        if isinstance(func, ast.Name) and func.id in self.functions:
            fn = self.functions[func.id]
            params = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)]
            taints = list(args) + [CLEAN] * max(0, len(params) - len(args))
            for key, value in kwargs.items():
                if key in params:
                    taints[params.index(key)] = value
            return self.function(fn, tuple(taints[:len(params)]))
        receiver = _any(self.expr(func.value, env, where)) if isinstance(func, ast.Attribute) else CLEAN
        handed = [*node.args, *(k.value for k in node.keywords)]
        if name and any(isinstance(a, ast.Name) and a.id == NOTEBOOK for a in handed):
            # a helper the lint cannot see into, handed the notebook: what it returns is
            # learner data
            named = [a for a in node.args if not (isinstance(a, ast.Name) and a.id == NOTEBOOK)]
            receiver = receiver | {_source_label(node, name, named)}
        return receiver | _union(args) | _union(list(kwargs.values()))

    # -- sinks ----------------------------------------------------------------------------
    def _sink(self, node: ast.Call, name: str, env: dict[str, Taint], where: str) -> None:
        pos = SINKS[name]
        expected = node.args[pos] if len(node.args) > pos else next(
            (k.value for k in node.keywords if k.arg == "expected"), None)
        actual = node.args[0] if node.args else next(
            (k.value for k in node.keywords if k.arg == "actual"), None)
        if expected is None:
            return
        extra = _any(self.expr(expected, env, where)) - _any(self.expr(actual, env, where))
        if extra:
            self._report(node, where, f"the expected value of {name}() comes from a learner "
                         "call: compute it in the grader from inputs the grader made")

    def _comparison(self, test: ast.expr, env: dict[str, Taint], where: str) -> None:
        for node in ast.walk(test):
            if isinstance(node, ast.Compare):
                sides = [_any(self.expr(s, env, where)) for s in [node.left, *node.comparators]]
                self._differ(node, sides, where, "both sides of a comparison come from learner "
                             "calls: compare with a value the grader computed")
                for part in ast.walk(node):
                    if isinstance(part, ast.BinOp) and isinstance(part.op, ast.Sub):
                        self._differ(part, [_any(self.expr(part.left, env, where)),
                                            _any(self.expr(part.right, env, where))], where,
                                     "a tolerance compares two learner values: compare with a "
                                     "value the grader computed")

    def _differ(self, node: ast.AST, sides: list[Labels], where: str, message: str) -> None:
        """A finding when every side carries learner data and not all from the same names."""
        if all(sides) and len(set(sides)) > 1:
            self._report(node, where, message)

    def _report(self, node: ast.AST, where: str, message: str) -> None:
        line = getattr(node, "lineno", 0)
        end = getattr(node, "end_lineno", line) or line
        if self.pragmas and any(PRAGMA in self.lines[i - 1] for i in range(line, end + 1)
                                if 0 < i <= len(self.lines)):
            return
        self.findings.setdefault((line, message), Finding(self.path.name, line, where, message))


def lint_file(path: Path, pragmas: bool = True) -> list[Finding]:
    """Findings in one grader file (a file that does not parse yields none: collection reports
    that). ``pragmas=False`` ignores ``# mlgrade: learner-expected-ok`` marks."""
    source = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError:
        return []
    lint = _FileLint(path, tree, source.splitlines(), pragmas)
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef) and fn.name.startswith("test"):
            lint.function(fn, lint.fixture_args(fn))
    return sorted(lint.findings.values(), key=lambda f: (f.file, f.line))


def lint_graders(graders: Path, pragmas: bool = True) -> list[Finding]:
    """Findings in every ``test_*.py`` / ``*_test.py`` file of a graders folder."""
    files = sorted({*graders.rglob("test_*.py"), *graders.rglob("*_test.py")})
    return [f for path in files for f in lint_file(path, pragmas)]


__all__ = ["PRAGMA", "Finding", "lint_file", "lint_graders"]
