"""Run every benchmark one after another (what `make bench` does).

Each script prints its table and writes its JSON under benchmarks/results/.
Long-sequence sizes stop at 8k unless `--full` (32k takes about 15 minutes
of a 2-core CPU).

    python benchmarks/run_all.py
    python benchmarks/run_all.py --full
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
QUICK_LONG_SEQUENCE = ["--lengths", "1024", "2048", "4096", "8192"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full", action="store_true", help="long sequences up to 32k"
    )
    args = parser.parse_args(argv)
    runs = [
        ["date_seq2seq.py"],
        ["decoding.py"],
        ["layer_throughput.py", "--repeats", "3"],
        ["training_step.py"],
        ["roofline.py", "--lengths", "1024", "2048", "4096"],
        ["long_sequence.py"] + ([] if args.full else QUICK_LONG_SEQUENCE),
        ["sliding_window.py"] + ([] if args.full else ["--quick"]),
        ["generation.py"] + ([] if args.full else ["--quick"]),
        ["xla_causal.py", "--repeats", "3"],
    ]
    failed = []
    for script, *script_args in runs:
        print(f"\n=== {script} {' '.join(script_args)}", flush=True)
        command = [sys.executable, os.path.join(HERE, script), *script_args]
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(script)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
