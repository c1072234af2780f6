"""Two checkouts of the package side by side: did a change make it slower?

Runs benchmark scripts on each checkout (`--trees OLD NEW`, say the commit
before a change, `git worktree add ../base REV`, and this one), in
alternating order round by round (OLD NEW, then NEW OLD, ...), so that a
machine getting slower or faster during the run weighs on both alike.
Each run uses that checkout's own copy of the script and its package
(`PYTHONPATH`), in a temporary folder, so neither tree's
`benchmarks/results/` changes. Rows of the two trees' JSON are matched on
their fields that are not timings, and the table shows, per row and
timing, the median of each tree over the rounds and NEW/OLD (above 1.0:
NEW takes longer, or for a rate such as tokens/s, NEW is slower when
below 1.0; the `slower` column reads the same way for both kinds).

    python benchmarks/compare_trees.py --trees ../base .
    python benchmarks/compare_trees.py --trees ../base . --rounds 3 \\
        --scripts training_step

Writes results/compare_trees.json (`--output NAME`: results/NAME.json).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

from _common import print_table  # noqa: E402
from _common import write_json  # noqa: E402

# What each script runs with: sizes that take a few minutes each on 2 CPUs.
SCRIPT_ARGS = {
    "layer_throughput": ["--d-model", "256", "--repeats", "3"],
    "training_step": ["--repeats", "10"],
    "roofline": ["--lengths", "1024", "2048", "--repeats", "3"],
    "long_sequence": ["--lengths", "1024", "2048", "4096"],
}
# Timings: lower is better; rates: higher is better. `ratio` (ours/Keras's
# time) and `speedup` (ours/Keras's rate) are measured in the same process,
# so machine drift cancels in them: the steadiest figure of a change.
LOWER_IS_BETTER = ("ms", "_ms", "seconds", "_s", "_gib", "ratio")
HIGHER_IS_BETTER = ("tokens_per_s", "speedup")
# Fields that are results, not what a row measures.
DERIVED = (
    "ratio_q1",
    "ratio_q3",
    "speedup_q1",
    "speedup_q3",
    "fraction_of_roof",
    "time_vs_dense",
    "roof_gflops",
    "gflops",
    "finite",
    "status",
)


def metric_kind(field, value):
    """`"lower"`, `"higher"` or None (a field that names the row)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if field.endswith("_params"):
        return None
    if field.endswith(HIGHER_IS_BETTER):
        return "higher"
    if field.endswith(LOWER_IS_BETTER):
        return "lower"
    return None


def is_derived(field):
    return field in DERIVED


def row_key(row):
    """The fields of a row that say what it measures, as a sorted tuple."""
    return tuple(
        sorted(
            (field, value)
            for field, value in row.items()
            if metric_kind(field, value) is None and not is_derived(field)
        )
    )


def run_script(tree, script, script_args, workdir):
    """Runs TREE's benchmarks/SCRIPT.py from a copy; returns its rows."""
    copy = os.path.join(workdir, "benchmarks")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(
        os.path.join(tree, "benchmarks"),
        copy,
        ignore=shutil.ignore_patterns("results", "__pycache__"),
    )
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    env.setdefault("KERAS_BACKEND", "tensorflow")
    command = [sys.executable, os.path.join(copy, f"{script}.py"), *script_args]
    process = subprocess.run(command, env=env, capture_output=True, text=True)
    if process.returncode != 0:
        tail = "\n".join(process.stderr.strip().splitlines()[-5:])
        raise SystemExit(
            f"{tree}: {script} failed ({process.returncode}):\n{tail}"
        )
    with open(os.path.join(copy, "results", f"{script}.json")) as f:
        return json.load(f)["rows"]


def compare(old_runs, new_runs):
    """Rows of NEW/OLD medians for every timing both trees measured."""

    def medians(runs):
        values = {}
        for rows in runs:
            for row in rows:
                key = row_key(row)
                for field, value in row.items():
                    kind = metric_kind(field, value)
                    if kind and not is_derived(field):
                        values.setdefault((key, field, kind), []).append(value)
        return {k: statistics.median(v) for k, v in values.items()}

    old, new = medians(old_runs), medians(new_runs)
    rows = []
    for (key, field, kind), old_value in old.items():
        new_value = new.get((key, field, kind))
        if new_value is None or not old_value:
            continue
        ratio = new_value / old_value
        rows.append(
            {
                "row": ", ".join(f"{k}={v}" for k, v in key),
                "metric": field,
                "old": old_value,
                "new": new_value,
                "new_over_old": ratio,
                "slower": ratio if kind == "lower" else 1.0 / ratio,
            }
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trees",
        nargs=2,
        required=True,
        metavar=("OLD", "NEW"),
        help="two checkouts of the package",
    )
    parser.add_argument(
        "--scripts",
        nargs="+",
        default=list(SCRIPT_ARGS),
        choices=list(SCRIPT_ARGS),
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--output", default="compare_trees", help="results/NAME.json"
    )
    parser.add_argument(
        "--script-args",
        help="arguments for every script instead of its defaults, one "
        'string (say "--lengths 2048 --repeats 5")',
    )
    args = parser.parse_args(argv)
    script_args = {
        script: (
            args.script_args.split()
            if args.script_args is not None
            else SCRIPT_ARGS[script]
        )
        for script in args.scripts
    }
    for tree in args.trees:
        if not os.path.isfile(
            os.path.join(tree, "keras_attention", "__init__.py")
        ):
            parser.error(f"--trees: {tree!r} is not a checkout of the package")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")

    results = {}
    table = []
    with tempfile.TemporaryDirectory() as workdir:
        for script in args.scripts:
            # By position: the same tree twice measures the noise.
            runs = ([], [])
            for round_index in range(args.rounds):
                order = (0, 1) if round_index % 2 == 0 else (1, 0)
                for position in order:
                    tree = args.trees[position]
                    print(
                        f"{script}: round {round_index + 1}, {tree}", flush=True
                    )
                    runs[position].append(
                        run_script(tree, script, script_args[script], workdir)
                    )
            rows = compare(*runs)
            for row in rows:
                row["script"] = script
            table.extend(rows)
            results[script] = {
                "args": script_args[script],
                "runs": {"old": runs[0], "new": runs[1]},
                "trees": args.trees,
            }
            print_table(
                rows, ["script", "row", "metric", "old", "new", "slower"]
            )
            print(flush=True)
    print_table(table, ["script", "row", "metric", "old", "new", "slower"])
    slower = [row["slower"] for row in table]
    if slower:
        print(
            f"\nNEW vs OLD over {len(slower)} timings: median slower "
            f"{statistics.median(slower):.3f}, min {min(slower):.3f}, "
            f"max {max(slower):.3f}"
        )
    write_json(
        args.output,
        {
            "config": {
                "trees": args.trees,
                "rounds": args.rounds,
                "timing": "each script run alternately per round on each tree; "
                "medians over rounds; slower > 1 means NEW is slower",
            },
            "rows": table,
            "runs": results,
        },
    )


if __name__ == "__main__":
    main()
