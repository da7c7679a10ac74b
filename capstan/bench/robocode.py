"""`capstan bench robocode`: pass@1 on robotics helper functions, naive vs flat vs hierarchical.

The problems (capstan/bench/data/robocode.jsonl, HumanEval format: geometry, spatial relations,
trajectories, layouts) are written as in `capstan bench humaneval` and tested in our sandbox.
`--problems FILE.jsonl` runs any problem file in HumanEval's format the same way."""

from __future__ import annotations

import argparse
from pathlib import Path

SUITE = "robocode"


def build_parser(parser: argparse.ArgumentParser) -> None:
    from capstan.bench.codegen import add_options

    parser.description = __doc__
    add_options(parser, SUITE)
    parser.add_argument(
        "--problems",
        type=Path,
        default=None,
        metavar="FILE.jsonl",
        help="a problem file in HumanEval's format (default: the built-in robocode problems)",
    )


def run(args: argparse.Namespace) -> int:
    from capstan.bench.codegen import run_suite
    from capstan.bench.problems import robocode_path

    return run_suite(args, SUITE, args.problems or robocode_path())
