"""The bar on seeds the defaults were not chosen with.

EvolutionOracle's defaults were chosen with seeds 0-9 (benchmarks/tune_evolution.py);
this prints the bar table of `metanas bench` for the seeds from ``--from`` on only.

Usage:

    .venv/bin/python benchmarks/bar_fresh_seeds.py benchmarks/results/raw.json.gz --from 10
"""

import argparse
import sys

from metanas.bench import report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw")
    parser.add_argument("--from", dest="first", type=int, default=10)
    args = parser.parse_args(argv)
    results = [r for r in report.load_results(args.raw) if r["seed"] >= args.first]
    seeds = sorted({r["seed"] for r in results if r["strategy"] == "metanas/evolution"})
    print(f"Seeds {seeds[0]}-{seeds[-1]} ({len(seeds)} seeds):\n")
    print("\n".join(report.bar_table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
