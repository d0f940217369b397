"""Benchmark: do the study's intervals keep their promise when the truth is messier than the model?

Synthetic studies of the demo's shape (6 language sets × 1 seed × 6 targets per condition, σ_target 5,
σ_set 1.6, σ_run 0.5, σ_residual 2 points; effect 2 points) under five truths
(weam.study.power.SCENARIOS): the fitted model; treatment × target (each condition its own
per-target deviation, sd 1.5); set × target (sd 2); heavy-tailed residuals (t, 3 df); unequal
seeds per set (1, 2, 3). Each runs with the effect (coverage of the true total effect by the 95 %
interval) and with no effect (false-positive rate). Methods: the primary total-effect analysis
(weam.study.stats.total_effect), the hierarchical bootstrap, the mixed model (REML, with the
condition × target term; the report's covariate-adjusted fit) and the old unit-level interval.
Requirement for the primary interval: coverage 93–97 % and false-positive rate ≤ 6 % in every
scenario. Monte-Carlo error of a coverage near 95 % at n studies: √(0.95 · 0.05 / n).

    python benchmarks/study_stats_coverage.py                        # every scenario, 500 studies each
    python benchmarks/study_stats_coverage.py --scenario treatment-target --studies 100 --json rows.json
    python benchmarks/study_stats_coverage.py --shape real           # the template's 8 sets × 2 seeds × 10 targets
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import pandas as pd

from weam.study.power import METHODS, SCENARIOS, scenario_coverage

SHAPES = {"demo": {}, "real": {"sets": 8, "seeds": 2, "targets": 10}}
ROW_KEYS = ("scenario", "method", "primary", "coverage", "false_positive_rate", "studies")


def run(scenarios: list[str], studies: int, resamples: int, methods: tuple[str, ...], shape: str,
        effect: float = 2.0) -> pd.DataFrame:
    tables = []
    for k, name in enumerate(scenarios):
        start = time.time()
        table = scenario_coverage(name, studies, effect, seed=2 * k + 1, n_resamples=resamples, methods=methods,
                                  shape=SHAPES[shape])
        table["seconds"] = time.time() - start
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def print_table(table: pd.DataFrame, studies: int) -> None:
    error = math.sqrt(0.95 * 0.05 / studies)
    print(f"{studies} studies per scenario and effect; Monte-Carlo error of a 95 % coverage: ±{error:.1%} (1 SE)")
    print("| scenario | method | primary | coverage (93–97 %) | false positives (≤ 6 %) | power | mean width | s |")
    print("|---|---|---|---|---|---|---|---|")
    for row in table.itertuples():
        print(f"| {row.scenario} | {row.method} | {'yes' if row.primary else ''} | {row.coverage:.1%} | "
              f"{row.false_positive_rate:.1%} | {row.power:.1%} | {row.mean_width:.2f} | {row.seconds:.0f} |")
    primary = table[table["primary"]]
    failed = primary[(primary["coverage"] < 0.93) | (primary["coverage"] > 0.97) | (primary["false_positive_rate"] > 0.06)]
    if primary.empty:
        print("primary interval: not among the methods run")
    else:
        print("primary interval: " + ("meets the requirement in every scenario run" if failed.empty else
                                      f"misses it in {', '.join(failed['scenario'])}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="all", help=f"one of {', '.join(SCENARIOS)}, or all")
    parser.add_argument("--studies", type=int, default=500, help="simulated studies per scenario and effect")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--shape", default="demo", choices=list(SHAPES))
    parser.add_argument("--json", type=Path, help="write the rows {scenario, method, primary, coverage, "
                                                  "false_positive_rate, studies} here")
    args = parser.parse_args()
    if args.scenario != "all" and args.scenario not in SCENARIOS:
        parser.error(f"unknown scenario '{args.scenario}' (known: {', '.join(SCENARIOS)}, all)")
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    table = run(scenarios, args.studies, args.resamples, tuple(args.methods), args.shape)
    print_table(table, args.studies)
    if args.json:
        rows = [{key: (bool(v) if key == "primary" else v) for key, v in zip(ROW_KEYS, values)}
                for values in table[list(ROW_KEYS)].itertuples(index=False)]
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
