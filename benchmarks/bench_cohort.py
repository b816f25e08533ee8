"""Speed benchmark: time ``make_spine_cohort`` on a large synthetic cohort.

Run ``python benchmarks/bench_cohort.py`` (options: ``--n``, ``--repeat``, ``--oracle``).
The target is well under 5 s for 100,000 records on a laptop; the best of the repeats
is reported, after one small warm-up call (imports, first-call overhead).
"""

from __future__ import annotations

import argparse
import time

from spinerisk.datasets import make_spine_cohort


def time_cohort(n: int = 100_000, repeat: int = 3, *, return_oracle: bool = False) -> float:
    """Best wall-clock time in seconds of ``make_spine_cohort(n)`` over ``repeat`` runs."""
    make_spine_cohort(1_000, seed=0)  # warm-up
    best = float("inf")
    for seed in range(repeat):
        start = time.perf_counter()
        make_spine_cohort(n, seed=seed, return_oracle=return_oracle)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="records per cohort")
    parser.add_argument("--repeat", type=int, default=3, help="number of timed runs")
    parser.add_argument("--oracle", action="store_true", help="also build the oracle")
    args = parser.parse_args()
    best = time_cohort(args.n, args.repeat, return_oracle=args.oracle)
    print(
        f"make_spine_cohort(n={args.n:,}, return_oracle={args.oracle}): "
        f"best of {args.repeat} = {best:.3f} s ({args.n / best:,.0f} records/s)"
    )


if __name__ == "__main__":
    main()
