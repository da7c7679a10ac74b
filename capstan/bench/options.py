"""Command-line options every suite shares, and the LLM settings they turn into.

`--cassette PATH --cassette-mode record|replay` become `CAPSTAN_CASSETTE` / `CAPSTAN_CASSETTE_MODE`
for `llm.from_config(env)` inside each worker process; everything else about the provider comes
from the usual `CAPSTAN_LLM*` environment variables (docs/CONTRACTS.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from capstan.bench.harness import default_workers

# The environment variables that decide which model answers (part of a result's fingerprint).
LLM_ENV_KEYS = (
    "CAPSTAN_LLM",
    "CAPSTAN_LLM_MODEL",
    "CAPSTAN_LLM_BASE_URL",
    "CAPSTAN_MODEL_PATH",
    "CAPSTAN_CASSETTE",
    "CAPSTAN_CASSETTE_MODE",
)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


MAX_SECONDS = 86_400.0  # a day: longer limits are no limits, and the OS's own overflow


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds in (0, {MAX_SECONDS:.0f}]")
    return value


def add_common_options(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument(
        "--limit", type=positive_int, default=None, metavar="N", help="run only the first N problems/tasks"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"where results go (default {default_out}, under $CAPSTAN_DATA_DIR when set, else var/); "
        "rerunning with the same DIR resumes",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="parallel worker processes (default: env CAPSTAN_BENCH_WORKERS, else 2); 1 runs in this process",
    )
    parser.add_argument(
        "--cassette", type=Path, default=None, metavar="PATH", help="record/replay LLM calls here"
    )
    parser.add_argument("--cassette-mode", choices=("record", "replay"), default=None)
    parser.add_argument(
        "--ray", default=None, metavar="ADDRESS", help="fan out over a Ray cluster (e.g. auto)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def llm_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The driver's model choice (`LLM_ENV_KEYS`, no secrets) and the cassette options, as the
    environment settings `llm.from_config` sees in every worker. They travel with the jobs, so a
    worker on a Ray node answers with the model the driver chose, not whatever its node's
    environment says (API keys stay in each node's own environment)."""
    if args.cassette is None and args.cassette_mode:
        raise SystemExit("--cassette-mode needs --cassette PATH")
    replaying = (args.cassette_mode or "replay") == "replay"
    if args.cassette is not None and replaying and not args.cassette.is_file():
        raise SystemExit(
            f"--cassette {args.cassette}: no such file to replay (record one with --cassette-mode record)"
        )
    chosen = {k: os.environ[k] for k in LLM_ENV_KEYS if k in os.environ}
    if "CAPSTAN_CASSETTE" in chosen:  # a worker may run elsewhere: pass the path it can open
        chosen["CAPSTAN_CASSETTE"] = str(Path(chosen["CAPSTAN_CASSETTE"]).resolve())
    if args.cassette is None:
        return chosen
    return {
        **chosen,
        "CAPSTAN_CASSETTE": str(Path(args.cassette).resolve()),
        "CAPSTAN_CASSETTE_MODE": args.cassette_mode or "replay",
    }


def worker_env(overrides: dict[str, str]) -> dict[str, str]:
    """What a worker passes to `llm.from_config`: its environment plus the suite's overrides."""
    return {**os.environ, **overrides}


def effective_workers(args: argparse.Namespace, overrides: dict[str, str]) -> int:
    """--workers, else CAPSTAN_BENCH_WORKERS; recording appends to one cassette file: keep that to a
    single writer."""
    workers = args.workers if args.workers is not None else default_workers()
    if overrides.get("CAPSTAN_CASSETTE_MODE") == "record" and workers > 1 and not args.ray:
        print(
            "recording a cassette: running with --workers 1 (one writer per cassette file)", file=sys.stderr
        )
        return 1
    return workers


def llm_fingerprint(overrides: dict[str, str]) -> dict[str, str]:
    """The settings that decide which model answers: results under other settings are not reused."""
    env = worker_env(overrides)
    return {k: env[k] for k in LLM_ENV_KEYS if k in env}


def out_dir(args: argparse.Namespace, suite: str) -> Path:
    """Where results go, created now: a place that cannot hold them stops the run before it starts."""
    out = (
        Path(args.out)
        if args.out is not None
        else Path(os.environ.get("CAPSTAN_DATA_DIR", "var"), "bench", suite)
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SystemExit(f"--out {out}: cannot keep results there ({exc.strerror})") from None
    return out
