"""`capstan bench llm`: latency of the configured LLM on a typical command.

Builds the real tabletop_ui request (system text + core few-shot examples as the fixed prefix,
retrieved examples, scene and command) from prompts/ when lmp is importable, else a representative
few-shot prompt of similar size. For the local model it measures, with a fresh temporary prefix
cache: time to first token cold (prefix computed), warm (prefix in memory, a different command),
after a simulated restart (prefix state read from disk), total latency and generation tokens/s;
then generation tokens/s on a short prompt (under 200 tokens, same model, same run, the same number
of tokens generated), since attention over a long prompt slows every generated token. These
figures decode one token at a time. Then the two tabletop requests and a longer program's, in turn,
three times with prompt-lookup drafts (`llm.lookup`, the default) and three times without,
interleaved: generation tokens/s of each, their ratio (`draft_speedup`) and whether every answer
was the same.
For cloud providers "cold" and "warm" are the first and second call (provider-side prompt cache;
time to first token needs CAPSTAN_LLM_STREAM=1 for openai / openai-compatible).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

COMMANDS = (
    "put the blue block in the bowl that is closest to it",
    "stack the red block on the blue block",
)
# a longer program for the drafts' comparison, beside the two one-liners above
LONGER_COMMAND = "line the blocks up from left to right, 10 cm apart, in front of the green bowl"
SCENE = {
    "blue block": [0.10, 0.40],
    "red block": [-0.10, 0.50],
    "green bowl": [0.00, 0.60],
    "yellow bowl": [0.20, 0.35],
}


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument(
        "--max-tokens", type=int, default=None, help="cap the answer length (default: prompt's)"
    )


def typical_request(command: str, max_tokens: int | None = None):
    """The tabletop_ui request for `command` on a four-object scene (fallback: a built-in prompt)."""
    from dataclasses import replace

    try:
        from capstan.lmp.prompt import build_request, describe_api, load_prompt
        from capstan.primitives.api import PolicyAPI

        api_text = describe_api(PolicyAPI.describe(PolicyAPI.__new__(PolicyAPI)))
        request = build_request(load_prompt("tabletop_ui"), {"api": api_text}, command, list(SCENE), SCENE)
        source = "prompts/tabletop_ui.yaml"
    except Exception:  # noqa: BLE001 - any failure of the other packages: fall back to our own prompt
        request = _builtin_request(command)
        source = "bench/llm.py built-in prompt"
    if max_tokens is not None:
        request = replace(request, max_tokens=max_tokens)
    return request, source


def _builtin_request(command: str):
    from capstan.llm.base import CompletionRequest, Message

    system = (
        "You write short Python programs that control a robot arm over a table with blocks and bowls.\n"
        "Functions: get_obj_names(), get_obj_pos(name) -> np.array([x, y]), pick(name), place(target),\n"
        "put_first_on_second(obj, target), say(text), get_corner_positions(), get_side_positions().\n"
        "Reply with Python code only."
    )
    messages = [Message("system", system)]
    colors = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "cyan", "brown", "gray"]
    for i in range(24):
        a, b = colors[i % 10], colors[(i * 3 + 1) % 10]
        scene = f"objects = ['{a} block', '{b} block', '{b} bowl', '{a} bowl']\n"
        messages.append(Message("user", f"{scene}# command: put the {a} block in the {b} bowl and say done"))
        messages.append(
            Message("assistant", f"put_first_on_second('{a} block', '{b} bowl')\nsay('done: {a} in {b}')")
        )
    prefix = len(messages)
    scene = f"objects = {list(SCENE)}\n"
    messages.append(Message("user", f"{scene}# command: {command}"))
    return CompletionRequest(tuple(messages), max_tokens=200, stop=("# command:",), prefix_messages=prefix)


SHORT_PROMPT = (
    "Write a Python function `running_max(xs)` that returns the list of running maxima of `xs`, "
    "with a docstring and comments."
)


def _decode_rate(c) -> float | None:
    """Generation tokens/s of one completion: the tokens after the first over the time after it."""
    generating = (c.latency_s or 0.0) - (c.ttft_s or 0.0)
    return (c.completion_tokens - 1) / generating if c.completion_tokens > 1 and generating > 0 else None


def _short_context(provider, tokens: int, repeats: int = 3) -> dict:
    """Generation speed on a short prompt, `tokens` generated (the long prompt's answer length)."""
    from capstan.llm.base import CompletionRequest, Message

    request = CompletionRequest((Message("user", SHORT_PROMPT),), max_tokens=max(tokens, 8))
    runs = [provider.complete(request) for _ in range(repeats)]
    rates = [r for r in map(_decode_rate, runs) if r is not None]
    return {
        "tokens_per_s_short_context": statistics.median(rates) if rates else None,
        "short_context_prompt_tokens": runs[0].prompt_tokens,
        "short_context_completion_tokens": runs[0].completion_tokens,
    }


def _figures(cold, warm, restart=None) -> dict:
    figures = {
        "ttft_cold_s": cold.ttft_s,
        "ttft_warm_s": warm.ttft_s,
        "latency_s": warm.latency_s,
        "latency_cold_s": cold.latency_s,
        "tokens_per_s": _decode_rate(warm),
        "prompt_tokens": warm.prompt_tokens,
        "prefix_tokens": warm.extra.get("prefix_tokens"),
        "cached_prompt_tokens_warm": warm.cached_prompt_tokens,
        "completion_tokens_warm": warm.completion_tokens,
        "answer_warm": warm.text,
    }
    if restart is not None:
        figures["ttft_restart_s"] = restart.ttft_s
        figures["prefix_source_restart"] = restart.extra.get("prefix_source")
    return figures


def _timed(provider, request):
    """complete() plus the process CPU seconds it used (a load-independent view on a busy machine)."""
    cpu = time.process_time()
    completion = provider.complete(request)
    completion.extra["cpu_s"] = time.process_time() - cpu
    return completion


def _drafts_against_plain(drafting, plain, requests, repeats: int = 3) -> dict:
    """The requests in turn (so each call reads its own open part again), answered with drafts and
    without, in turn; generation tokens/s of each, overall and per request, and whether the answers
    were the same."""
    rates: dict[str, list[list[float]]] = {"drafts": [[] for _ in requests], "plain": [[] for _ in requests]}
    answers: dict[str, list[str]] = {"drafts": [], "plain": []}
    read = kept = 0
    for i in range(repeats):
        order = (
            (("drafts", drafting), ("plain", plain))
            if i % 2 == 0
            else (("plain", plain), ("drafts", drafting))
        )
        for name, provider in order:
            for k, request in enumerate(requests):
                c = provider.complete(request)
                rate = _decode_rate(c)
                if rate is not None:
                    rates[name][k].append(rate)
                answers[name].append(c.text)
                if name == "drafts":
                    read += c.extra.get("draft_tokens", 0)
                    kept += c.extra.get("draft_accepted", 0)
    every = {name: [r for per in lists for r in per] for name, lists in rates.items()}
    with_drafts = statistics.median(every["drafts"]) if every["drafts"] else None
    without = statistics.median(every["plain"]) if every["plain"] else None
    by_request = [
        round(statistics.median(d) / statistics.median(p), 3) if d and p else None
        for d, p in zip(rates["drafts"], rates["plain"], strict=True)
    ]
    return {
        "draft_tokens_per_s": with_drafts,
        "draft_plain_tokens_per_s": without,
        "draft_speedup": with_drafts / without if with_drafts and without else None,
        "draft_speedup_by_request": by_request,
        "draft_tokens_per_s_spread": [min(every["drafts"], default=None), max(every["drafts"], default=None)],
        "draft_plain_tokens_per_s_spread": [
            min(every["plain"], default=None),
            max(every["plain"], default=None),
        ],
        "draft_same_answers": answers["drafts"] == answers["plain"],
        "draft_tokens_read": read,
        "draft_tokens_kept": kept,
    }


def _bench_local(requests) -> dict:
    from capstan.llm.config import model_name
    from capstan.llm.local import LocalProvider, clear_registry
    from capstan.llm.model_files import resolve_model_path

    path = resolve_model_path()
    with tempfile.TemporaryDirectory(prefix="capstan-bench-prefix-") as cache:
        clear_registry()
        provider = LocalProvider(path, prefix_cache_dir=cache, model_name=model_name(), draft_tokens=0)
        cold = _timed(provider, requests[0])
        warm = _timed(provider, requests[1])
        clear_registry()  # simulate a restart: a new Llama that must read the prefix state from disk
        provider = LocalProvider(path, prefix_cache_dir=cache, model_name=model_name(), draft_tokens=0)
        restart = _timed(provider, requests[0])
        short = _short_context(provider, warm.completion_tokens)
        drafting = LocalProvider(path, prefix_cache_dir=cache, model_name=model_name())
        longer = typical_request(LONGER_COMMAND, requests[0].max_tokens)[0]
        drafts = _drafts_against_plain(drafting, provider, [*requests, longer])
        clear_registry()
    figures = _figures(cold, warm, restart)
    figures.update(short)
    long_rates = [r for r in (_decode_rate(warm), _decode_rate(restart)) if r is not None]
    figures["tokens_per_s"] = statistics.median(long_rates) if long_rates else None
    if figures["tokens_per_s"] and short["tokens_per_s_short_context"]:
        figures["tokens_per_s_ratio"] = figures["tokens_per_s"] / short["tokens_per_s_short_context"]
    figures.update(drafts)
    figures["cpu_cold_s"], figures["cpu_warm_s"] = cold.extra["cpu_s"], warm.extra["cpu_s"]
    figures["threads"] = [c.extra.get("threads") for c in (cold, warm, restart)]
    return {"provider": "local", "model": provider.model, **figures}


def run(args: argparse.Namespace) -> int:
    from capstan.llm.config import from_config, provider_kind

    load_before = os.getloadavg()[0]
    requests = [typical_request(c, args.max_tokens)[0] for c in COMMANDS]
    source = typical_request(COMMANDS[0])[1]
    if provider_kind() == "local" and not os.environ.get("CAPSTAN_CASSETTE"):
        figures = _bench_local(requests)
    else:
        provider = from_config()
        cold, warm = provider.complete(requests[0]), provider.complete(requests[1])
        figures = {"provider": provider.name, "model": provider.model, **_figures(cold, warm)}
    figures["prompt_source"] = source
    figures["load_avg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # before, after
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"LLM bench: {figures['provider']} / {figures['model']}  ({figures['prompt_source']})")
    print(f"  prompt tokens            {figures['prompt_tokens']} (fixed prefix {figures['prefix_tokens']})")
    for key, label in (
        ("ttft_cold_s", "time to first token, cold"),
        ("ttft_warm_s", "time to first token, warm"),
        ("ttft_restart_s", "time to first token, restart"),
        ("latency_cold_s", "total latency, cold"),
        ("latency_s", "total latency, warm"),
        ("tokens_per_s", "generation tokens/s"),
        ("tokens_per_s_short_context", "generation tokens/s, short"),
        ("tokens_per_s_ratio", "long / short prompt"),
        ("draft_tokens_per_s", "with prompt-lookup drafts"),
        ("draft_plain_tokens_per_s", "without, interleaved"),
        ("draft_speedup", "drafts / without"),
    ):
        value = figures.get(key)
        if key in figures:
            print(f"  {label:<29} {'n/a' if value is None else f'{value:.3f}'}")
    if figures.get("draft_speedup_by_request"):
        print(f"  {'drafts / without, by request':<29} {figures['draft_speedup_by_request']}")
    if "draft_same_answers" in figures:
        print(f"  {'same answers with drafts':<29} {figures['draft_same_answers']}")
    return 0
