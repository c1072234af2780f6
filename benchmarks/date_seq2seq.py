"""How fast the `make demo` seq2seq reaches 99% / 99.9% held-out exact match.

Trains exactly what `recipes/date_conversion.py` trains (same defaults,
same data, same model; any recipe option can be passed through) and, every
`--eval-every` batches, pauses the training clock to measure exact-match
accuracy of greedy decoding on the held-out split (test sources never occur
in the train split). Prints the epochs, the training time (wall clock and
process CPU time, XLA compilation included, evaluation excluded) to reach
99%, 99.9% and 99.96%, and the final accuracy, and writes
`benchmarks/results/date_seq2seq.json`.

Reference: the NumPy model of a well-known textbook (LSTM 256, dot
attention, batch 128) reaches 99.9% only after 3 epochs of 45k examples,
about 3 minutes on a 2-core CPU. The bar here is 99.9% within 60 s.

    python benchmarks/date_seq2seq.py
    python benchmarks/date_seq2seq.py --eval-every 50 -- --units 128
"""

import argparse
import importlib.util
import os
import sys
import time

import keras

sys.path.insert(0, os.path.dirname(__file__))

from _common import print_table  # noqa: E402
from _common import write_json  # noqa: E402

RECIPE = os.path.join(
    os.path.dirname(__file__), "..", "recipes", "date_conversion.py"
)
THRESHOLDS = (0.99, 0.999, 0.9996)
TIME_BUDGET_SECONDS = 60.0


def _load_recipe():
    spec = importlib.util.spec_from_file_location("date_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TimeToAccuracy(keras.callbacks.Callback):
    """Evaluates every `every` batches with the training clock paused."""

    def __init__(self, translator_fn, pairs, every, batches_per_epoch):
        super().__init__()
        self.translator_fn = translator_fn
        self.pairs = pairs
        self.every = every
        self.batches_per_epoch = batches_per_epoch
        self.points = []
        self.translator = None
        self.batches = 0
        self.wall = 0.0
        self.cpu = 0.0
        self.evaluation_seconds = 0.0

    def _resume(self):
        self._wall_start = time.perf_counter()
        self._cpu_start = time.process_time()

    def _pause(self):
        self.wall += time.perf_counter() - self._wall_start
        self.cpu += time.process_time() - self._cpu_start

    def on_train_begin(self, logs=None):
        self._resume()

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        at_epoch_end = self.batches % self.batches_per_epoch == 0
        if self.batches % self.every and not at_epoch_end:
            return
        self._pause()
        started = time.perf_counter()
        if self.translator is None:
            self.translator = self.translator_fn(self.model)
        accuracy, _ = self.translator.exact_match(self.pairs)
        self.evaluation_seconds += time.perf_counter() - started
        point = {
            "batches": self.batches,
            "epochs": self.batches / self.batches_per_epoch,
            "train_wall_seconds": round(self.wall, 2),
            "train_cpu_seconds": round(self.cpu, 2),
            "exact_match": accuracy,
        }
        self.points.append(point)
        print(
            f"\n  [{point['epochs']:.2f} epochs, {self.wall:.1f} s wall, "
            f"{self.cpu:.1f} s CPU] held-out exact match {accuracy:.4%}",
            flush=True,
        )
        self._resume()

    def on_train_end(self, logs=None):
        self._pause()

    def first_reaching(self, threshold):
        for point in self.points:
            if point["exact_match"] >= threshold:
                return point
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Arguments after `--` go to the recipe (see "
        "`python recipes/date_conversion.py --help`).",
    )
    parser.add_argument(
        "--eval-every",
        type=int,
        default=50,
        help="evaluate every this many batches (and at every epoch end)",
    )
    parser.add_argument(
        "--name", default="date_seq2seq", help="results/NAME.json"
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    recipe_argv = []
    if "--" in argv:
        split = argv.index("--")
        argv, recipe_argv = argv[:split], argv[split + 1 :]
    args = parser.parse_args(argv)

    recipe = _load_recipe()
    recipe_args = recipe.parse_args(recipe_argv)
    load_before = os.getloadavg()
    experiment = recipe.Experiment(recipe_args)
    batches_per_epoch = len(experiment.train_pairs) // recipe_args.batch_size
    timer = TimeToAccuracy(
        experiment.make_translator,
        experiment.test_pairs,
        args.eval_every,
        max(1, batches_per_epoch),
    )
    experiment.model.fit(
        experiment.train_data,
        epochs=recipe_args.epochs,
        callbacks=[timer],
        shuffle=False,
        verbose=2,
    )
    rows = []
    reached = {}
    for threshold in THRESHOLDS:
        point = timer.first_reaching(threshold)
        reached[f"{threshold:.2%}"] = point
        rows.append(
            {
                "target": f"{threshold:.2%}",
                "epochs": None if point is None else round(point["epochs"], 2),
                "wall s": None
                if point is None
                else point["train_wall_seconds"],
                "cpu s": None if point is None else point["train_cpu_seconds"],
            }
        )
    final = timer.points[-1]["exact_match"] if timer.points else None
    print()
    print_table(rows, ["target", "epochs", "wall s", "cpu s"])
    print(
        f"final exact match {final:.4%} after {recipe_args.epochs} epochs, "
        f"{timer.wall:.1f} s of training (wall; {timer.cpu:.1f} s CPU), "
        f"{timer.evaluation_seconds:.1f} s of evaluation not counted; "
        f"load average before/after {load_before[0]:.1f}/"
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    at_999 = reached[f"{0.999:.2%}"]
    payload = {
        "recipe_args": vars(recipe_args),
        "eval_every_batches": args.eval_every,
        "num_train": len(experiment.train_pairs),
        "num_test": len(experiment.test_pairs),
        "reached": reached,
        "final_exact_match": final,
        "epochs": recipe_args.epochs,
        "train_wall_seconds": timer.wall,
        "train_cpu_seconds": timer.cpu,
        "evaluation_seconds_not_counted": timer.evaluation_seconds,
        "load_average_before_after": [load_before[0], os.getloadavg()[0]],
        "budget_seconds_for_99.9%": TIME_BUDGET_SECONDS,
        "fraction_of_budget_used_for_99.9%": (
            None
            if at_999 is None
            else at_999["train_wall_seconds"] / TIME_BUDGET_SECONDS
        ),
        "points": timer.points,
    }
    write_json(args.name, payload)
    return payload


if __name__ == "__main__":
    main()
