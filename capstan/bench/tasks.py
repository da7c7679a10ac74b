"""`capstan bench tasks`: success rates on the tabletop task suite, per task family.

Families of tasks (pick-place, stacking, sorting,
corners and sides, relative positions, move by a distance, arrangements, superlatives, multi-turn,
questions, unseen colors, refusals), each run on the full stack (sim, primitives, sandbox, lmp) and
judged from the final scene and the said lines. Success per family with Wilson 95% intervals and
failure categories."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

SUITE = "tasks"


def build_parser(parser: argparse.ArgumentParser) -> None:
    from capstan.bench import options

    parser.description = __doc__
    options.add_common_options(parser, default_out=f"bench/{SUITE}")
    parser.add_argument(
        "--split",
        choices=("seen", "unseen"),
        default="unseen",
        help="unseen (default): commands written from each task's meaning, never from the prompts; "
        "seen: the original templates, kept as the regression set",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        metavar="N",
        help="seeds per family (default: 10 for seen; for unseen, one per phrasing: 6)",
    )
    parser.add_argument(
        "--families", default=None, metavar="A,B", help="comma-separated families (default: all; see --list)"
    )
    parser.add_argument("--list", action="store_true", help="list the families and exit")
    parser.add_argument("--attempts", type=int, default=3, help="max programs per command (self-repair)")
    parser.add_argument(
        "--candidates",
        type=int,
        default=3,
        metavar="N",
        help="programs per command when more than the first is sampled (see --sample-when; 1: never)",
    )
    parser.add_argument(
        "--no-dry-run",
        action="store_true",
        help="run programs directly, with no rehearsal on a world snapshot",
    )
    parser.add_argument(
        "--sample-when",
        choices=("refused", "refused-or-compositional"),
        default="refused",
        help="when to sample more candidates: only when the first program is refused in its dry run "
        "(default), or also for compositional commands",
    )
    parser.add_argument(
        "--command-timeout",
        type=options.positive_seconds,
        default=240.0,
        metavar="S",
        help="limit per command (s)",
    )
    parser.add_argument(
        "--exec-timeout",
        type=options.positive_seconds,
        default=60.0,
        metavar="S",
        help="limit per program run (s)",
    )


def run(args: argparse.Namespace) -> int:
    from capstan.bench import options
    from capstan.bench.harness import Harness, Job
    from capstan.bench.report import write_report
    from capstan.bench.tabletop import SPLITS, generate_tasks
    from capstan.bench.tabletop import runner as task_runner

    if args.list:
        for name, fam in SPLITS[args.split].items():
            print(f"{name:15s} e.g. {fam.generate(0).commands}")
        return 0
    families = [f.strip() for f in args.families.split(",")] if args.families else None
    seeds = args.seeds if args.seeds is not None else default_seeds(args.split)
    try:
        tasks = generate_tasks(seeds, families, args.split)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    if args.limit is not None:
        tasks = tasks[: args.limit]
    overrides = options.llm_overrides(args)
    run_cfg = {
        "llm_overrides": overrides,
        "max_attempts": args.attempts,
        "command_timeout_s": args.command_timeout,
        "exec_timeout_s": args.exec_timeout,
        "dry_run": not args.no_dry_run,
        "candidates": args.candidates,
        "sample_compositional": args.sample_when == "refused-or-compositional",
    }
    config = {"suite": SUITE, "split": args.split, "run": run_cfg, "llm": options.llm_fingerprint(overrides)}
    out = options.out_dir(args, SUITE)
    harness = Harness(
        setup=task_runner.setup,
        run_one=task_runner.run_one,
        config=config,
        results_path=out / f"{SUITE}.results.jsonl",
        workers=options.effective_workers(args, overrides),
        ray_address=args.ray,
        progress=not args.no_progress,
        desc=SUITE,
    )
    t0 = time.time()
    rows = harness.run([Job(t.id, {"task": t.to_json()}) for t in tasks])
    summary = summarize(rows, {k: v for k, v in config.items() if k != "run"} | {"run": _public(run_cfg)})
    summary["wall_s"] = round(time.time() - t0, 1)
    json_path, md_path = write_report(out, SUITE, summary, render_markdown(summary))
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "items"}, indent=2))
    else:
        print(render_table(summary), end="")
        print(f"results: {json_path} and {md_path}", file=sys.stderr)
    return 0


def default_seeds(split: str) -> int:
    """Seen: 10 seeds per family. Unseen: one task per phrasing of the family with the most."""
    from capstan.bench.tabletop import SPLITS

    return 10 if split == "seen" else max(len(f.phrasings) for f in SPLITS[split].values())


def _public(run_cfg: dict) -> dict:
    return {k: v for k, v in run_cfg.items() if k != "llm_overrides"}


def summarize(rows: list[dict], config: dict) -> dict:
    from capstan.bench.stats import rate, wilson_interval
    from capstan.bench.tabletop import SPLITS
    from capstan.bench.tabletop.colors import color_counts
    from capstan.bench.tabletop.runner import CATEGORIES

    for r in rows:  # a harness error (exception in the runner) is a failed task of its family
        if r.get("status") == "error":
            r.setdefault("success", False)
            r.setdefault("category", "harness_error")
            r.setdefault("family", r["id"].split("/")[0])
    per_family: dict[str, dict] = {}
    for r in rows:
        fam = per_family.setdefault(
            r["family"], {"n": 0, "successes": 0, "failures": dict.fromkeys(CATEGORIES, 0)}
        )
        fam["n"] += 1
        fam["successes"] += bool(r.get("success"))
        if not r.get("success"):
            fam["failures"][r.get("category") or "wrong_program"] += 1
    for name, fam in per_family.items():
        turns = [t for r in rows if r["family"] == name for t in r.get("turns", [])]
        fam["llm_calls_mean"] = _mean([t.get("llm_calls", 0) for t in turns])
        fam["candidates_mean"] = _mean([t.get("candidates", 0) for t in turns])
        fam["repairs_mean"] = _mean([max(0, t.get("attempts", 1) - 1) for t in turns])
        fam["helpers"] = sum(t.get("helper_calls", 0) for t in turns)
        fam["nested_calls"] = sum(t.get("nested_calls", 0) for t in turns)
        fam["command_p50_s"] = (
            round(statistics.median(t["wall_s"] for t in turns), 2)
            if turns and all("wall_s" in t for t in turns)
            else None
        )
        fam["success_rate"] = round(rate(fam["successes"], fam["n"]), 4)
        fam["ci95"] = [round(v, 4) for v in wilson_interval(fam["successes"], fam["n"])]
    colors = SPLITS[config.get("split", "seen")]["unseen_colors"].palette()  # type: ignore[attr-defined]
    n, ok = len(rows), sum(bool(r.get("success")) for r in rows)
    totals = dict.fromkeys(CATEGORIES, 0)
    for fam in per_family.values():
        for k, v in fam["failures"].items():
            totals[k] += v
    model = next((t.get("model") for r in rows for t in r.get("turns", []) if t.get("model")), None)
    return {
        "suite": SUITE,
        "split": config.get("split", "seen"),
        "config": config,
        "model": model,
        "success_rate": round(rate(ok, n), 4),
        "n": n,
        "successes": ok,
        "ci95": [round(v, 4) for v in wilson_interval(ok, n)],
        "failure_categories": totals,
        "candidates_mean": _mean([t.get("candidates", 0) for r in rows for t in r.get("turns", [])]),
        "repairs_mean": _mean([max(0, t.get("attempts", 1) - 1) for r in rows for t in r.get("turns", [])]),
        "per_family": per_family,
        "repair_success_rate": repair_rates(rows),
        "unseen_colors": {"colors": colors, "prompt_example_mentions": color_counts(tuple(colors))},
        "items": rows,
    }


def _mean(values: list[float]) -> float | None:
    """Per command."""
    return round(statistics.fmean(values), 2) if values else None


def repair_rates(rows: list[dict]) -> dict:
    """Of the commands whose first program failed and that had another attempt, how many ended
    succeeded: overall and by the first error's kind."""
    by_kind: dict[str, dict[str, int]] = {}
    for r in rows:
        for turn in r.get("turns", []):
            kind = turn.get("first_error_kind")
            if kind is None or turn.get("attempts", 0) < 2:
                continue
            k = by_kind.setdefault(kind, {"n": 0, "repaired": 0})
            k["n"] += 1
            k["repaired"] += turn.get("status") == "succeeded"
    n = sum(k["n"] for k in by_kind.values())
    repaired = sum(k["repaired"] for k in by_kind.values())
    return {
        "overall": round(repaired / n, 4) if n else None,
        "n": n,
        "by_kind": dict(sorted(by_kind.items())),
    }


def render_table(summary: dict) -> str:
    from capstan.bench.report import markdown_table, pct

    def ci(c):
        return f"{pct(c[0])} - {pct(c[1])}"

    rows = [
        [
            name,
            f["n"],
            f["successes"],
            pct(f["success_rate"]),
            ci(f["ci95"]),
            f.get("candidates_mean"),
            f.get("repairs_mean"),
            f.get("llm_calls_mean"),
            f.get("command_p50_s"),
            _fails(f["failures"]),
        ]
        for name, f in summary["per_family"].items()
    ]
    rows.append(
        [
            "**all**",
            summary["n"],
            summary["successes"],
            pct(summary["success_rate"]),
            ci(summary["ci95"]),
            summary.get("candidates_mean"),
            summary.get("repairs_mean"),
            "",
            "",
            _fails(summary["failure_categories"]),
        ]
    )
    head = f"tabletop tasks (model: {summary.get('model') or 'n/a'})\n"
    cols = [
        "family",
        "n",
        "ok",
        "success",
        "95% CI (Wilson)",
        "candidates",
        "repairs",
        "LLM calls",
        "p50 s",
        "failures",
    ]
    return head + markdown_table(cols, rows)


def _fails(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "-"


def render_markdown(summary: dict) -> str:
    from capstan.bench.report import markdown_table

    rows = [
        [
            r["id"],
            "ok" if r.get("success") else (r.get("category") or "fail"),
            " / ".join(r.get("commands", [])),
            sum(t.get("candidates", 0) for t in r.get("turns", [])),
            sum(max(0, t.get("attempts", 1) - 1) for t in r.get("turns", [])),
            r.get("reason") or r.get("error") or "",
        ]
        for r in summary["items"]
    ]
    colors = summary["unseen_colors"]
    return (
        "# tabletop tasks\n\n"
        + render_table(summary)
        + f"\nunseen_colors uses {', '.join(colors['colors'])} "
        f"(prompt example mentions: {colors['prompt_example_mentions']})\n"
        + "\n## Per task\n\n"
        + markdown_table(["task", "outcome", "commands", "candidates", "repairs", "checker"], rows)
    )
