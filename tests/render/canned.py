"""One shared set of canned results (constructed dataclasses, no kernel) for every renderer.

Each case is one edge a platform must still read: a typical mixed result, full marks, a
zero-point assignment, every grader errored, a notebook that could not run at all (errored, no
tests), non-ASCII names, and a very long hostile message.
"""

from __future__ import annotations

from mlgrade.results import (
    CellError,
    Execution,
    GradeResult,
    QuestionInfo,
    SubmissionStatus,
    TestResult,
    TestStatus,
)

P, F, E = TestStatus.PASSED, TestStatus.FAILED, TestStatus.ERROR

# A long message full of what breaks consumers: table pipes, markup, XML-invalid control
# characters, a GitHub workflow command, quotes, non-ASCII, newlines.
HOSTILE = ("| pipe | <b>html</b> & \"quotes\" `tick` *star* _under_ [link](x)\n::error::injected\n"
           "ctrl:\x00\x07\x1b[31m red\x1b[0m é 漢字 🙂 ")
LONG = (HOSTILE * 3) + ("very long feedback " * 1000) + "THE END"


def _test(id: str, title: str, question: str | None, points: float, status: TestStatus,
          feedback: str = "", duration: float = 0.25) -> TestResult:
    return TestResult(id=id, title=title, question=question, points=points,
                      earned=points if status is P else 0.0, status=status, feedback=feedback,
                      duration_s=duration)


def _result(name: str, tests: tuple[TestResult, ...], *, status: SubmissionStatus =
            SubmissionStatus.GRADED, reason: str | None = None, title: str = "Month 2: maths",
            notebook: str = "month2.ipynb", execution: Execution | None = None,
            notices: tuple[str, ...] = (),
            questions: tuple[QuestionInfo, ...] = ()) -> GradeResult:
    return GradeResult(
        assignment=name, title=title, notebook=notebook, seed=20260101, status=status,
        tests=tests, execution=execution or Execution(cells_total=9, cells_run=9, duration_s=2.5),
        duration_s=7.25, isolation="process", mlgrade_version="0.1.0",
        grader_version="0123456789abcdef", reason=reason, notices=notices, questions=questions)


MONTH2_QUESTIONS = (
    QuestionInfo("q1", "A weighted-sum prediction"),
    QuestionInfo("q2", "A dot product by hand"),
    QuestionInfo("q3", "Gradient of the mean squared error"),
    QuestionInfo("q7", "A numerically stable sigmoid"),
)
STUB = ("{} is not implemented yet (it raises NotImplementedError): replace the "
        "`raise NotImplementedError` line with your code.")


TYPICAL = _result("month2", (
    _test("test_prediction", "`prediction` is the weighted sum", "q1", 1, P),
    _test("test_dot_product", "dot_product on random vectors", "q2", 1, P),
    _test("test_dot_mismatch", "dot_product refuses mismatched lengths", "q2", 1, F,
          "dot_product([1, 2], [1, 2, 3]) should raise ValueError, but it returned 8."),
    _test("test_mse_gradient", "mse_gradient on fresh inputs", "q3", 2, F,
          "mse_gradient(X, y, w) is not defined: run the cell that defines it."),
    _test("test_sigmoid", "sigmoid is stable", "q7", 2.5, P),
), execution=Execution(cells_total=9, cells_run=9, duration_s=2.5, errors=(
    CellError(cell=5, ename="NameError", evalue="name 'mse_gradient' is not defined",
              line="g = mse_gradient(X, y, w)"),)),
   notices=("some cell output was too large and was truncated",), questions=MONTH2_QUESTIONS)

# a starter notebook with one question begun: not-started questions are one line each, and a
# cell that was stopped shows the line that was running
STARTED = _result("month2", (
    _test("test_prediction", "`prediction` is the weighted sum", "q1", 1, F,
          "`prediction` should be the dot product of the weights and the features."),
    _test("test_dot_product", "dot_product on random vectors", "q2", 1, F,
          STUB.format("`dot_product(...)`")),
    _test("test_dot_mismatch", "dot_product refuses mismatched lengths", "q2", 1, F,
          STUB.format("`dot_product(...)`")),
    _test("test_mse_gradient", "mse_gradient on fresh inputs", "q3", 2, F,
          STUB.format("`mse_gradient(...)`")),
    _test("test_sigmoid", "sigmoid is stable", "q7", 2, F,
          "`sigmoid(...)` took longer than 30 s and was stopped (an infinite loop, or much "
          "slower code than needed?)."),
), execution=Execution(cells_total=9, cells_run=9, duration_s=64.0, errors=(
    CellError(cell=8, ename="Timeout", evalue="cell ran longer than 60 s and was stopped; look "
              "for an infinite loop or very slow code", line="z = z + 1"),)),
   questions=MONTH2_QUESTIONS)

FULL_MARKS = _result("month2", (
    _test("test_prediction", "`prediction` is the weighted sum", "q1", 1, P),
    _test("test_dot_product", "dot_product on random vectors", "q2", 2, P),
))

ZERO_POINTS = _result("practice", (
    _test("test_warmup", "a warm-up check worth no points", None, 0, P),
    _test("test_optional", "an optional check worth no points", None, 0, F, "not yet."),
), title="Practice: no points")

ALL_ERRORED = _result("month2", (
    _test("test_prediction", "`prediction` is the weighted sum", "q1", 1, E,
          "internal grader error (KeyError); no points awarded for this test. Tell your "
          "instructor."),
    _test("test_dot_product", "dot_product on random vectors", "q2", 2, E,
          "internal grader error (TypeError); no points awarded for this test. Tell your "
          "instructor."),
), status=SubmissionStatus.ERRORED,
   reason="a grader failed internally; affected tests earned no points")

COULD_NOT_RUN = _result("month2", (), status=SubmissionStatus.ERRORED,
                        reason="the kernel died before the graders could start (it ran out "
                               "of memory); no test ran",
                        execution=Execution(cells_total=9, cells_run=3, kernel_restarts=1,
                                            duration_s=30.0))

NON_ASCII = _result("mois2", (
    _test("test_régression", "Régression linéaire — 線形回帰 ✓", "q1", 1, P),
    _test("test_naïve_bayes", "Bayes naïf: P(A|B) ≥ 0 ½ ß", "q2", 2, F,
          "la probabilité a posteriori doit être ≤ 1 (obtenu 1.2) — 事後確率"),
), title="Mois 2 : les mathématiques de l'apprentissage", notebook="élève_ß_漢字.ipynb")

LONG_MESSAGE = _result("month2", (
    _test("test_prediction", "a title " + HOSTILE, "q1", 1, F, LONG),
    _test("test_dot_product", "dot_product on random vectors", "q2", 2, P),
), execution=Execution(cells_total=9, cells_run=9, duration_s=2.5, errors=(
    CellError(cell=2, ename="ValueError", evalue=LONG, line="raise ValueError(" + HOSTILE),)))

CASES: dict[str, GradeResult] = {
    "typical": TYPICAL,
    "started": STARTED,
    "full_marks": FULL_MARKS,
    "zero_points": ZERO_POINTS,
    "all_errored": ALL_ERRORED,
    "could_not_run": COULD_NOT_RUN,
    "non_ascii": NON_ASCII,
    "long_message": LONG_MESSAGE,
}
