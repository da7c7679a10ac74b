"""The in-process llama.cpp provider with the real model: generation, stop/max_tokens, prefix reuse
from memory and from the on-disk prefix cache after a simulated restart."""

from __future__ import annotations

import threading
import time

import pytest
from llm_model import model_path_or_skip

from capstan.llm.base import CompletionRequest, LLMError, Message
from capstan.llm.local import MAX_DRAFT_TOKENS, LocalProvider, clear_registry

pytestmark = pytest.mark.model

SYSTEM = (
    "You write short Python programs for a tabletop robot. Use only these functions: "
    "pick(name), place(target), put_first_on_second(obj, target), say(text), get_obj_names(). "
    "Answer with code only, no explanations, no markdown fences."
)
FEW_SHOT = (
    Message("system", SYSTEM),
    Message("user", "# put the green block in the red bowl"),
    Message("assistant", "put_first_on_second('green block', 'red bowl')"),
    Message("user", "# say hello"),
    Message("assistant", "say('hello')"),
)


def command(text: str, **kw) -> CompletionRequest:
    kw.setdefault("max_tokens", 24)
    kw.setdefault("stop", ("\n#",))
    return CompletionRequest(messages=(*FEW_SHOT, Message("user", text)), prefix_messages=len(FEW_SHOT), **kw)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("prefix-cache")


@pytest.fixture(scope="module")
def provider(cache_dir):
    path = model_path_or_skip()
    clear_registry()
    yield LocalProvider(path, prefix_cache_dir=cache_dir)
    clear_registry()


def test_short_prompt_completes_with_counts(provider):
    c = provider.complete(command("# put the red block on the blue bowl"))
    assert "red block" in c.text and "blue bowl" in c.text
    assert c.finish_reason == "stop" and c.provider == "local"
    assert c.prompt_tokens > 50 and 0 < c.completion_tokens <= 24
    assert c.ttft_s is not None and 0 < c.ttft_s <= c.latency_s
    assert c.extra["prefix_source"] in ("computed", "disk")


def test_second_command_reuses_the_prefix_from_memory(provider):
    provider.complete(command("# say goodbye"))
    c = provider.complete(command("# pick up the yellow block"))
    assert c.extra["prefix_source"] == "memory"
    assert c.cached_prompt_tokens >= c.extra["prefix_tokens"] > 50


def test_restart_loads_the_prefix_state_from_disk_and_answers_the_same(provider, cache_dir):
    before = provider.complete(command("# put the blue block on the red bowl"))
    clear_registry()  # as after a process restart: the next provider loads a fresh Llama
    fresh = LocalProvider(provider.model_path, prefix_cache_dir=cache_dir)
    after = fresh.complete(command("# put the blue block on the red bowl"))
    assert after.extra["prefix_source"] == "disk"
    assert after.cached_prompt_tokens >= after.extra["prefix_tokens"]
    assert after.text == before.text  # restored state gives the same greedy answer
    again = provider.complete(command("# say goodbye"))  # an old provider follows the registry
    assert provider._loaded is fresh._loaded and again.extra["prefix_source"] == "memory"


def test_stop_sequences_and_max_tokens(provider):
    counting = CompletionRequest(
        messages=(Message("user", "Count from 1 to 30, separated by commas. Output only the numbers."),),
        max_tokens=60,
        stop=("7",),
    )
    c = provider.complete(counting)
    assert c.finish_reason == "stop" and "7" not in c.text and c.text.startswith("1")
    short = provider.complete(CompletionRequest(messages=counting.messages, max_tokens=3))
    assert short.completion_tokens == 3 and short.finish_reason == "length"


def test_prompt_longer_than_the_context_is_a_clear_error(provider):
    with pytest.raises(LLMError, match="context holds"):
        provider.complete(CompletionRequest(messages=(Message("user", "block " * 9000),)))


def test_concurrent_calls_are_serialized(provider):
    results = []
    threads = [
        threading.Thread(target=lambda t=t: results.append(provider.complete(command(t, max_tokens=6))))
        for t in ("# say one", "# say two")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.text for r in results) == ["say('one')", "say('two')"]


def test_prefill_reads_ahead_and_the_answer_stays_the_same(provider):
    ask = command("# put the yellow block on the green bowl")
    provider.complete(command("# say goodbye"))  # the model now holds another turn
    plain = provider.complete(ask)
    provider.complete(command("# say goodbye"))
    opened = CompletionRequest(
        messages=(*FEW_SHOT, Message("user", "# put the yellow block")), prefix_messages=len(FEW_SHOT)
    )
    assert provider.prefill(opened)
    ahead = provider.complete(ask)
    assert ahead.text == plain.text
    # only ' on the green bowl' and the turn's end were left to read
    assert ahead.cached_prompt_tokens >= ahead.prompt_tokens - 10 > plain.cached_prompt_tokens


def test_prefill_gives_way_to_a_call(provider):
    opened = CompletionRequest(
        messages=(*FEW_SHOT, Message("user", "# stack")), prefix_messages=len(FEW_SHOT)
    )
    loaded = provider._current()
    with loaded.lock:  # a call is running
        assert provider.prefill(opened) is False
    loaded.waiting += 1  # a call is waiting for the model
    try:
        assert provider.prefill(opened) is False
    finally:
        loaded.waiting -= 1


def test_a_prefill_stops_for_a_call_that_comes_in_while_it_reads(provider):
    long = "# " + " ".join(f"item{i}" for i in range(300))  # many chunks: many seconds to read
    opened = CompletionRequest(messages=(*FEW_SHOT, Message("user", long)), prefix_messages=len(FEW_SHOT))
    provider.complete(command("# say goodbye"))  # the fixed prefix is in memory
    read: list[bool] = []
    reader = threading.Thread(target=lambda: read.append(provider.prefill(opened)))
    reader.start()
    time.sleep(0.5)  # well into the reading
    c = provider.complete(command("# say hi", max_tokens=6))
    reader.join()
    assert read == [False] and c.text == "say('hi')"
    assert c.extra["queue_s"] < 2.0  # it waited for one chunk, not for the whole reading
    stop = threading.Event()
    stop.set()
    assert provider.prefill(opened, stop) is False


def test_the_tabletop_lead_reads_as_the_same_tokens_the_command_starts_with(provider):
    from capstan.llm.chat_template import split_open_prompt, split_prompt
    from capstan.lmp.prompt import build_lead_request, build_request, load_prompt

    spec = load_prompt("tabletop_ui")
    scene = ["red block", "blue block", "green bowl"]
    turn = {"command": "stack the blocks", "code": "put_first_on_second('red block', 'blue block')\n"}
    for turns in ([], [turn]):
        lead = build_lead_request(spec, {"api": "API"}, scene, None, turns)
        full = build_request(spec, {"api": "API"}, "put the blue block in the green bowl", scene, None, turns)
        assert lead is not None
        opened = provider.tokenize("".join(split_open_prompt(lead.messages, lead.prefix_messages)))
        whole = provider.tokenize("".join(split_prompt(full.messages, full.prefix_messages)))
        assert whole[: len(opened)] == opened and len(whole) > len(opened)


def test_greedy_answers_with_drafts_are_the_answers_decoded_one_token_at_a_time(provider):
    """Drafts looked up in the prompt change how fast an answer comes, not what it says: the same
    loaded model, one provider reading drafts and one decoding token by token."""
    plain = LocalProvider(
        provider.model_path, prefix_cache_dir=provider.prefix_cache.directory, draft_tokens=0
    )
    asks = [
        command(
            "# put the red block on the blue bowl and then the green block on the red block", max_tokens=48
        ),
        command("# say that the blue bowl is empty", max_tokens=24),
        CompletionRequest(
            messages=(Message("user", "Count from 1 to 30, separated by commas."),), max_tokens=40
        ),
        CompletionRequest(
            messages=(Message("user", "Count from 1 to 30, separated by commas. Output only the numbers."),),
            max_tokens=60,
            stop=("17",),
        ),
    ]
    drafted = 0
    for ask in asks:
        fast, slow = provider.complete(ask), plain.complete(ask)
        assert (fast.text, fast.finish_reason, fast.completion_tokens) == (
            slow.text,
            slow.finish_reason,
            slow.completion_tokens,
        )
        assert slow.extra["draft_tokens"] == 0
        drafted += fast.extra["draft_accepted"]
    assert drafted > 0  # the counting answers repeat ", 1" patterns the lookup finds
    # a draft and its token must fit llama.cpp's batch: the setting is capped
    huge = LocalProvider(
        provider.model_path, prefix_cache_dir=provider.prefix_cache.directory, draft_tokens=10_000
    )
    assert huge.draft_tokens == MAX_DRAFT_TOKENS < huge.settings.n_batch


def test_the_llm_bench_compares_drafts_with_plain_decoding_on_the_same_requests(provider):
    from capstan.bench.llm import _drafts_against_plain

    plain = LocalProvider(
        provider.model_path, prefix_cache_dir=provider.prefix_cache.directory, draft_tokens=0
    )
    asks = [command("# put the red block on the blue bowl"), command("# say that the bowls are empty")]
    figures = _drafts_against_plain(provider, plain, asks, repeats=2)
    assert figures["draft_same_answers"] is True
    assert figures["draft_tokens_per_s"] > 0 and figures["draft_plain_tokens_per_s"] > 0
    assert figures["draft_speedup"] == figures["draft_tokens_per_s"] / figures["draft_plain_tokens_per_s"]
    assert figures["draft_tokens_kept"] <= figures["draft_tokens_read"]
