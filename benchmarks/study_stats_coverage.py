"""Benchmark: do the study's intervals mean what they say? 200 synthetic studies with a known
effect and known variance components, and 200 with no effect; per method the coverage of the
true effect by its 95 % interval, the mean width, and how often the effect is called significant
(with no effect: the false-positive rate of the primary endpoint). The old unit-level interval
(seeds paired by rank, (seed × language) units resampled as independent) is shown beside the
mixed model and the hierarchical bootstrap.

    python benchmarks/study_stats_coverage.py                  # 200 + 200 studies, ~2 min on one core
    python benchmarks/study_stats_coverage.py --studies 50 --sets 4 --seeds 3

The design defaults are the test's: 6 language sets per condition, 2 seeds, 8 targets,
σ_target 0.10, σ_set 0.03, σ_run 0.01, σ_residual 0.02, effect 0.05 (score scale 0-1).
"""

from __future__ import annotations

import argparse
import time

from weam.study.power import simulate_coverage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--effect", type=float, default=0.05)
    parser.add_argument("--sets", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--targets", type=int, default=8)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    design = {"sets": args.sets, "seeds": args.seeds, "targets": args.targets}
    for effect, label in ((args.effect, f"effect {args.effect:g}"), (0.0, "no effect")):
        start = time.time()
        table = simulate_coverage(args.studies, effect, seed=1 if effect else 2, n_resamples=args.resamples, **design)
        print(f"\n{label}: {args.studies} studies, {args.sets} sets × {args.seeds} seeds × {args.targets} targets "
              f"per condition ({time.time() - start:.0f} s)")
        print(f"| method | coverage of {effect:g} | mean CI width | called significant | mean estimate |")
        print("|---|---|---|---|---|")
        for row in table.itertuples():
            print(f"| {row.method} | {row.coverage:.1%} | {row.mean_width:.4f} | {row.significant:.1%} | "
                  f"{row.mean_estimate:+.4f} |")


if __name__ == "__main__":
    main()
