"""Regression gates for a HessGPT model: copy this file into your project's tests/.

The hessgpt-bench pytest plugin (installed with the package) provides the
``bench_run`` and ``bench_baseline`` fixtures. Point them at runs:

    # gate a finished run against the last good one
    pytest tests/test_regression_gates.py --bench-run runs/epoch7 --bench-baseline runs/epoch6

    # or run the bench on a checkpoint first, then gate it
    pytest tests/test_regression_gates.py --bench-checkpoint checkpoints/epoch7.pt --bench-baseline runs/epoch6

Without those options the tests are skipped (with a message naming the
option to give), so this file can sit in a normal test suite.

Units: grades are /20, category scores /100. ``assert_no_regression`` fails
only when a drop is larger than its limit (``max_drop`` grade points,
``max_category_drop`` category points) *and* significant in a paired test over
the items both runs answered, with ``alpha`` shared between the grade (half)
and the categories (the other half; categories too small to ever be
significant give their share away), so sampling noise does not fail CI. The
failure message names the categories, the drop with its CI and p-value, and
the items that regressed most. Adjust the numbers below to your model.
"""

from graders.gates import assert_category_at_least, assert_grade_at_least, assert_no_regression

MIN_GRADE = 13.0  # out of 20
MIN_FACTUAL = 70.0  # out of 100
MAX_GRADE_DROP = 0.5  # grade points (/20) the model may lose before the gate looks at significance
MAX_CATEGORY_DROP = 5.0  # category points (/100), likewise
ALPHA = 0.05  # significance level of the paired test


def test_grade_is_at_least_the_floor(bench_run):
    assert_grade_at_least(bench_run, MIN_GRADE)


def test_factual_answers_stay_good(bench_run):
    assert_category_at_least(bench_run, "factual", MIN_FACTUAL)


def test_no_regression_against_the_baseline(bench_run, bench_baseline):
    assert_no_regression(
        bench_run,
        bench_baseline,
        max_drop=MAX_GRADE_DROP,
        alpha=ALPHA,
        max_category_drop=MAX_CATEGORY_DROP,
        # categories=["factual"] would gate only that category; the grade is gated either way.
        # categories=[] gates the grade alone, with all of alpha.
    )
