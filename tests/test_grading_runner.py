"""The grader plumbing (pytest run in-process by mlgrade), without a kernel."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from mlgrade.grading.runner import run_graders
from mlgrade.results import TestStatus


def _graders(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "graders"
    folder.mkdir()
    (folder / "test_things.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return folder


def _run(folder: Path, seed: int = 1):
    return run_graders(folder, None, seed, folder, folder)


SOURCE = '''
    import numpy as np
    from mlgrade.grading import expect, expect_close, points

    @points(2, question="q1")
    def test_passes():
        """a passing check"""
        expect_close(0.1 + 0.2, 0.3, "arithmetic")

    @points(1)
    def test_message_only():
        secret = 42
        assert secret == 41, "the value is off: check the units"

    @points(1)
    def test_bare_assert():
        assert 1 == 2

    @points(3)
    def test_grader_bug():
        return 1 / 0

    def test_no_points():
        expect(True, "fine")

    @points(1)
    def test_rng_draw(rng):
        print("DRAW", rng.integers(0, 10**9))
'''


def test_statuses_points_and_messages(tmp_path: Path) -> None:
    run = _run(_graders(tmp_path, SOURCE))
    assert run.error is None
    by_id = {t.id: t for t in run.tests}
    assert [t.id for t in run.tests] == ["test_passes", "test_message_only", "test_bare_assert",
                                         "test_grader_bug", "test_no_points", "test_rng_draw"]
    assert by_id["test_passes"].status is TestStatus.PASSED
    assert (by_id["test_passes"].earned, by_id["test_passes"].points) == (2.0, 2.0)
    assert by_id["test_passes"].question == "q1" and by_id["test_passes"].title == "a passing check"
    assert by_id["test_message_only"].feedback == "the value is off: check the units"
    assert "42" not in by_id["test_message_only"].feedback  # no assertion introspection
    assert by_id["test_bare_assert"].feedback == "this check failed."
    bug = by_id["test_grader_bug"]
    assert bug.status is TestStatus.ERROR and bug.earned == 0
    assert "internal grader error (ZeroDivisionError)" in bug.feedback
    assert "Traceback" not in bug.feedback and "1 / 0" not in bug.feedback
    assert any("ZeroDivisionError" in detail for detail in run.grader_errors)
    assert by_id["test_no_points"].points == 0
    assert by_id["test_message_only"].title == "message only"


def test_collection_error_and_empty_folder_are_errors(tmp_path: Path) -> None:
    broken = _graders(tmp_path, "def test_x(:\n    pass\n")
    run = _run(broken)
    assert run.error is not None and "could not be loaded" in run.error
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no grader tests" in (_run(empty).error or "")


def test_nb_fixture_without_a_kernel_is_a_grader_error(tmp_path: Path) -> None:
    run = _run(_graders(tmp_path, '''
        from mlgrade.grading import points
        @points(1)
        def test_uses_nb(nb):
            nb.get("x")
    '''))
    assert run.tests[0].status is TestStatus.ERROR


def test_rng_is_seeded_by_run_seed_and_test_name(tmp_path: Path) -> None:
    import hashlib

    import numpy as np

    folder = tmp_path / "graders"
    folder.mkdir()
    digest = hashlib.sha256(b"test_a").digest()
    for seed in (1, 2):
        expected = int(np.random.default_rng([seed, int.from_bytes(digest[:8], "little")]).integers(0, 10**9))
        (folder / "test_things.py").write_text(textwrap.dedent(f'''
            from mlgrade.grading import points
            @points(1)
            def test_a(rng):
                assert int(rng.integers(0, 10**9)) == {expected}
        '''), encoding="utf-8")
        assert _run(folder, seed).tests[0].status is TestStatus.PASSED
        assert _run(folder, seed + 10).tests[0].status is TestStatus.FAILED


WRAPPED = '''
    from mlgrade.grading import points

    @points(1, question="q1")
    def test_wrapped():
        """build_pipeline, fitted by the grader, predicts rows it never saw about as well as a
        standard scaler + logistic regression

        A second paragraph is a note for grader authors, never part of the title."""
        assert False, "no"

    @points(1, question="q2")
    def test_one_line():
        """  `model` is fitted  """
'''
WHOLE = ("build_pipeline, fitted by the grader, predicts rows it never saw about as well as a "
         "standard scaler + logistic regression")


def test_title_is_the_whole_first_docstring_paragraph_in_every_format(tmp_path: Path) -> None:
    import json

    from mlgrade.render import Format, console, renderer
    from mlgrade.results import Execution, GradeResult, SubmissionStatus

    run = _run(_graders(tmp_path, WRAPPED))
    assert [t.title for t in run.tests] == [WHOLE, "`model` is fitted"]
    result = GradeResult(
        assignment="month3", title="Month 3", notebook="month3.ipynb", seed=1,
        status=SubmissionStatus.GRADED, tests=run.tests,
        execution=Execution(cells_total=1, cells_run=1), duration_s=1.0, isolation="none",
        mlgrade_version="0", grader_version="0")
    for fmt in Format:
        # the console folds its title column beside the points: read it wide
        text = console.render_text(result, width=400) if fmt is Format.CONSOLE else renderer(fmt)(result)
        if fmt is Format.CLASSROOM:  # base64 documents, one per runner
            import base64

            text = " ".join(base64.b64decode(line.split("=", 1)[1]).decode()
                            for line in text.splitlines())
        if fmt is Format.MARKDOWN:  # Markdown escapes (build\\_pipeline) read as the text
            text = re.sub(r"\\(.)", r"\1", text)
        flat = " ".join(text.split())
        assert WHOLE in flat, fmt
        assert "second paragraph" not in flat, fmt
    assert json.loads(renderer(Format.JSON)(result))["tests"][0]["title"] == WHOLE


def test_month3_titles_that_wrap_in_the_source_are_whole() -> None:
    from mlgrade.grading.runner import collect_graders

    root = Path(__file__).resolve().parents[1] / "graders"
    tests, errors = collect_graders(root / "month3")
    assert errors == ()
    titles = {t.id: t.title for t in tests}
    assert titles["test_pipeline_structure"].endswith(
        "with its default settings (checked by fitting it on new rows)")
    assert titles["test_imbalanced_minority_recall"].endswith(
        "(with the F1 the text also requires, so that flagging every row finds nothing)")
    assert all("\n" not in t and "  " not in t for t in titles.values())


def test_a_failed_check_shows_its_small_example_under_the_public_seed_only(tmp_path: Path) -> None:
    """The learner's own `check` (the published default seed) may show one small input, their
    value and the expected one; a secret seed's feedback never does."""
    from mlgrade.config import DEFAULT_SEED

    folder = tmp_path / "graders"
    folder.mkdir()
    (folder / "test_example.py").write_text(textwrap.dedent('''
        import numpy as np
        from mlgrade.grading import expect_close, points

        @points(1)
        def test_close():
            """close"""
            expect_close(np.array([1.0, 2.0]), np.array([1.0, 4.0]), "the gradient is off.",
                         example="X = [[1, 0], [0, 1]], y = [1, 2], w = [0, 0]")

        @points(1)
        def test_big():
            """a value too long to show"""
            expect_close(np.zeros(500), np.ones(500), "too big.", example="X = ...")
    '''), encoding="utf-8")
    public = {t.id: t.feedback for t in _run(folder, DEFAULT_SEED).tests}
    assert public["test_close"] == (
        "the gradient is off. Example (shown with the public seed only): X = [[1, 0], [0, 1]], "
        "y = [1, 2], w = [0, 0]: you returned [1., 2.], expected [1., 4.].")
    assert public["test_big"] == "too big."
    secret = {t.id: t.feedback for t in _run(folder, 12345).tests}
    assert secret == {"test_close": "the gradient is off.", "test_big": "too big."}
