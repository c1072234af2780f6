"""Tests of the timing helpers the benchmark scripts share."""

import os
import sys

import pytest

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks")
)

from _common import interleaved_times  # noqa: E402
from _common import round_ratio_quartiles  # noqa: E402


def test_steps_run_in_alternating_rounds_after_warmup():
    calls = []
    steps = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = interleaved_times(steps, repeats=3, warmup=1)
    assert calls == ["a", "b"] * 4
    assert {name: len(t) for name, t in times.items()} == {"a": 3, "b": 3}
    assert all(t >= 0 for t in times["a"] + times["b"])


def test_round_ratio_quartiles():
    # Per-round ratios 0.5, 1, 1.5, 2, 2.5: inclusive quartiles 1 and 2.
    ours = [1.0, 2.0, 3.0, 4.0, 5.0]
    theirs = [2.0] * 5
    assert round_ratio_quartiles(ours, theirs) == pytest.approx((1.0, 2.0))
    # The ratios pair times of the same round, whatever the drift between
    # rounds: a machine twice as slow in the second round changes nothing.
    assert round_ratio_quartiles([1.0, 2.0], [2.0, 4.0]) == (0.5, 0.5)
    assert round_ratio_quartiles([3.0], [2.0]) == (1.5, 1.5)


def test_compare_trees_matches_rows_and_orients_slower():
    import compare_trees

    old_runs = [
        [
            {
                "layer": "MHA",
                "n": 128,
                "xla": False,
                "ours_ms": 10.0,
                "ratio": 0.8,
                "ratio_q1": 0.7,
            },
            {"xla": True, "ours_tokens_per_s": 100.0, "ours_params": 5},
        ],
        [
            {
                "layer": "MHA",
                "n": 128,
                "xla": False,
                "ours_ms": 14.0,
                "ratio": 0.8,
                "ratio_q1": 0.1,
            },
            {"xla": True, "ours_tokens_per_s": 100.0, "ours_params": 5},
        ],
    ]
    new_runs = [
        [
            {
                "layer": "MHA",
                "n": 128,
                "xla": False,
                "ours_ms": 24.0,
                "ratio": 0.4,
                "ratio_q1": 0.3,
            },
            {"xla": True, "ours_tokens_per_s": 50.0, "ours_params": 5},
            {"layer": "MHA", "n": 512, "xla": False, "ours_ms": 1.0},
        ]
    ]
    rows = {
        (row["row"], row["metric"]): row
        for row in compare_trees.compare(old_runs, new_runs)
    }
    # Quartiles and parameter counts are neither a timing nor the row's
    # name; a row only one tree measured is left out.
    assert sorted(rows) == [
        ("layer=MHA, n=128, xla=False", "ours_ms"),
        ("layer=MHA, n=128, xla=False", "ratio"),
        ("ours_params=5, xla=True", "ours_tokens_per_s"),
    ]
    timing = rows[("layer=MHA, n=128, xla=False", "ours_ms")]
    assert timing["old"] == 12.0 and timing["slower"] == pytest.approx(2.0)
    assert rows[("layer=MHA, n=128, xla=False", "ratio")]["slower"] == 0.5
    rate = rows[("ours_params=5, xla=True", "ours_tokens_per_s")]
    assert rate["new_over_old"] == 0.5 and rate["slower"] == 2.0
