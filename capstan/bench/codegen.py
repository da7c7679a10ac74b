"""The code-generation suite behind `capstan bench humaneval` and `capstan bench robocode`.

Each problem is written three ways, all starting from the same plain chat message (the spec, no
system text, no few-shot example; `FunctionGenerator.spec_request`): `naive` sends only that, with
no machinery: the baseline the other two must beat; `flat` (lmp.FunctionGenerator) adds the
standard-library imports the answer forgot and a check: an answer that fails an example of the
spec's own docstring (never the hidden tests) is rewritten once, told which example failed;
`hierarchical` adds the hierarchy: undefined helpers are generated recursively, and when the answer
and its rewrite both fail an example a planner splits the function into helpers that the function
generator writes. The answer failing the fewest examples stands. The problem's `test` and
`check(entry_point)` then run on the result in our sandbox under a per-problem time limit. Greedy
decoding, one sample: pass@1 is the fraction passed. `--canonical` runs the problems' own canonical
solutions instead (no model): a check of the problem file and of the sandbox policy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from capstan.bench import options
from capstan.bench.harness import Harness, Job
from capstan.bench.problems import ProblemFileError, program, read_problems
from capstan.bench.report import markdown_table, pct, write_report
from capstan.lmp.nested import NESTED
from capstan.service.assembly import error_text

MODES = ("naive", "flat", "hierarchical")
MODE_CHOICES = {"all": MODES, "both": ("flat", "hierarchical"), **{m: (m,) for m in MODES}}

# Modules benchmark solutions may import beyond the sandbox's default allowlist (math, typing,
# collections, itertools, random, copy, numpy, shapely, ... are allowed already). HumanEval's
# solutions and tests need hashlib, re and string.
SOLUTION_MODULES = ("decimal", "fractions", "hashlib", "re", "string")


def add_options(parser: argparse.ArgumentParser, suite: str) -> None:
    options.add_common_options(parser, default_out=f"bench/{suite}")
    parser.add_argument(
        "--mode",
        choices=tuple(MODE_CHOICES),
        default="all",
        help="naive, flat, hierarchical, both (flat and hierarchical) or all (default)",
    )
    parser.add_argument(
        "--timeout",
        type=options.positive_seconds,
        default=10.0,
        metavar="S",
        help="time limit per test run, computing included (s, default 10)",
    )
    parser.add_argument(
        "--canonical",
        action="store_true",
        help="run the canonical solutions instead of generating (no model)",
    )


# --- worker side -------------------------------------------------------------------------------


class Context:
    def __init__(self, config: dict):
        from capstan.service.assembly import build_function_generator, build_sandbox

        # a test may compute for as long as --timeout allows, not only the sandbox's default budget
        cpu_s = max(10.0, float(config.get("timeout_s", 10.0)))
        self.sandbox = build_sandbox(1, config.get("modules", SOLUTION_MODULES), cpu_budget_s=cpu_s)
        self.generator = None
        self.llm = None
        if not config.get("canonical"):
            from capstan.bench.provider import build_llm

            self.llm = build_llm(config["llm_overrides"])
            self.generator = build_function_generator(self.llm, self.sandbox)

    def example_check(self, spec: str, entry_point: str, timeout_s: float):
        from capstan.lmp.spec_examples import example_check

        return example_check(self.sandbox, spec, entry_point, timeout_s)


def setup(config: dict) -> Context:
    return Context(config)


def run_one(ctx: Context, payload: dict) -> dict:
    problem, mode = payload["problem"], payload["mode"]
    row: dict = {"task_id": problem["task_id"], "mode": mode}
    t0 = time.perf_counter()
    if ctx.generator is None:
        code = problem["prompt"] + problem.get("canonical_solution", "")
    elif mode == "naive":
        completion = ctx.llm.complete(ctx.generator.spec_request(problem["prompt"]))
        code = ctx.generator.assemble(problem["prompt"], completion.text, problem["entry_point"])
        row.update(
            llm_calls=1,
            helpers=[],
            completion_tokens=int(completion.completion_tokens or 0),
            model=completion.model,
        )
    else:
        spec, entry_point = problem["prompt"], problem["entry_point"]
        gen = ctx.generator.generate(
            spec,
            entry_point,
            hierarchical=mode == "hierarchical",
            check=ctx.example_check(spec, entry_point, payload["timeout_s"]),
        )
        code = gen.code
        row["attempts"] = gen.attempts
        row["example_failures"] = len(gen.example_failures)
        row["llm_calls"] = len(gen.llm_calls)
        row["helpers"] = sorted(gen.helpers)  # in the answer
        row["helpers_written"] = list(gen.written)  # by the model in any attempt, kept or not
        row["nested_calls"] = sum(c.get("lmp") in NESTED for c in gen.llm_calls)
        row["completion_tokens"] = sum(int(c.get("completion_tokens") or 0) for c in gen.llm_calls)
        row["model"] = next((c.get("model") for c in gen.llm_calls if c.get("model")), None)
    row["gen_s"] = round(time.perf_counter() - t0, 3)
    res = ctx.sandbox.run(
        program(problem, code), host_functions={}, timeout_s=payload["timeout_s"], return_names=()
    )
    row["exec_s"] = round(res.duration_s, 3)
    row["passed"] = bool(res.ok)
    if res.ok:
        row["result"] = "passed"
    else:
        err = res.error
        row["error_kind"] = str(err.kind) if err is not None else "crash"
        row["result"] = "timed out" if row["error_kind"] == "timeout" else f"failed: {error_text(err)}"
    row["code"] = code
    return row


# --- driver side -------------------------------------------------------------------------------


def run_suite(args: argparse.Namespace, suite: str, problems_path: Path) -> int:
    problems = read_problems(problems_path)
    # results recorded for other problems (an edited file) are not reused, whatever --limit says
    digest = hashlib.sha256(json.dumps(problems, sort_keys=True).encode()).hexdigest()
    if args.limit is not None:
        problems = problems[: args.limit]
    modes = MODE_CHOICES[args.mode]
    if args.canonical:
        missing = [p["task_id"] for p in problems if "canonical_solution" not in p]
        if missing:
            raise ProblemFileError(
                f"--canonical: {len(missing)} of {len(problems)} problems have no canonical_solution, "
                f"e.g. {missing[0]}"
            )
        modes = ("canonical",)
    overrides = {} if args.canonical else options.llm_overrides(args)
    config = {
        "suite": suite,
        "problems": str(problems_path),
        "problems_sha256": digest,
        "timeout_s": args.timeout,
        "canonical": bool(args.canonical),
        "llm": {} if args.canonical else options.llm_fingerprint(overrides),
        "llm_overrides": overrides,
        "modules": list(SOLUTION_MODULES),
    }
    jobs = [  # problem by problem, both modes together: a stopped run still compares like with like
        Job(f"{mode}:{p['task_id']}", {"problem": p, "mode": mode, "timeout_s": args.timeout})
        for p in problems
        for mode in modes
    ]
    out = options.out_dir(args, suite)
    harness = Harness(
        setup=setup,
        run_one=run_one,
        config=config,
        results_path=out / f"{suite}.results.jsonl",
        workers=options.effective_workers(args, overrides),
        ray_address=args.ray,
        progress=not args.no_progress,
        desc=suite,
    )
    t0 = time.time()
    rows = harness.run(jobs)
    summary = summarize(suite, rows, modes, config, problems_path)
    summary["wall_s"] = round(time.time() - t0, 1)
    json_path, md_path = write_report(out, suite, summary, render_markdown(summary))
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "items"}, indent=2))
    else:
        print(render_totals(summary), end="")
    print(f"results: {json_path} and {md_path}", file=sys.stderr)
    if rows and all(r.get("status") == "error" for r in rows):
        first = rows[0].get("error", "?")
        print(f"every job failed to run (first: {first}); nothing was measured", file=sys.stderr)
        return 1
    return 0


def summarize(suite: str, rows: list[dict], modes, config: dict, problems_path: Path) -> dict:
    summary: dict = {
        "suite": suite,
        "problems_file": str(problems_path),
        "config": {k: v for k, v in config.items() if k not in ("modules", "llm_overrides")},
        "model": next((r.get("model") for r in rows if r.get("model")), None),
    }
    for mode in modes:
        mine = [r for r in rows if r.get("mode") == mode or r["id"].startswith(f"{mode}:")]
        passed = sum(1 for r in mine if r.get("passed"))
        summary[mode] = {
            "pass_at_1": round(passed / len(mine), 4) if mine else 0.0,
            "n": len(mine),
            "passed": passed,
            "errors": sum(1 for r in mine if r.get("status") == "error"),
            "timeouts": sum(1 for r in mine if r.get("error_kind") == "timeout"),
            "helpers_generated": sum(len(r.get("helpers_written", r.get("helpers")) or ()) for r in mine),
            "problems_with_helpers": sum(1 for r in mine if r.get("helpers")),  # helpers in the answer
            "nested_calls": sum(int(r.get("nested_calls") or 0) for r in mine),
            "revised": sum(1 for r in mine if (r.get("attempts") or 1) > 1),
            "llm_calls": sum(int(r.get("llm_calls") or 0) for r in mine),
        }
    if len(modes) > 1:  # with one mode there is nothing to compare
        summary["only_passing_in"] = only_passing_in(rows, modes)
    summary["items"] = rows
    return summary


def only_passing_in(rows: list[dict], modes) -> dict[str, list[str]]:
    """For each mode, the problems that pass in it and in no other mode of the run."""
    passed: dict[str, set[str]] = {m: set() for m in modes}
    for r in rows:
        mode, _, task_id = r["id"].partition(":")
        if r.get("passed") and mode in passed:
            passed[mode].add(task_id)
    return {m: sorted(passed[m] - set().union(*(passed[o] for o in modes if o != m))) for m in modes}


def render_totals(summary: dict) -> str:
    modes = [m for m in (*MODES, "canonical") if m in summary]
    rows = [
        [
            m,
            summary[m]["n"],
            summary[m]["passed"],
            pct(summary[m]["pass_at_1"]),
            summary[m].get("helpers_generated", 0),
            len(summary.get("only_passing_in", {}).get(m, ())),
            summary[m]["errors"],
            summary[m]["timeouts"],
        ]
        for m in modes
    ]
    cols = ["mode", "n", "passed", "pass@1", "helpers", "only this mode", "harness errors", "timeouts"]
    return f"{summary['suite']} (model: {summary.get('model') or 'n/a'})\n" + markdown_table(cols, rows)


def render_markdown(summary: dict) -> str:
    modes = [m for m in (*MODES, "canonical") if m in summary]
    by_task: dict[str, dict[str, str]] = {}
    for r in summary["items"]:
        mode, _, task_id = r["id"].partition(":")
        outcome = "pass" if r.get("passed") else (r.get("result") or r.get("error") or "fail")
        by_task.setdefault(task_id, {})[mode] = outcome[:80]
    rows = [[tid, *(by_task[tid].get(m, "") for m in modes)] for tid in by_task]
    return (
        f"# {summary['suite']}\n\n"
        + render_totals(summary)
        + "\n## Per problem\n\n"
        + markdown_table(["task_id", *modes], rows)
    )
