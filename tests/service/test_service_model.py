"""End to end with the REAL local model: one command over HTTP moves the block into the bowl."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.model, pytest.mark.slow]


def local_model_or_skip() -> None:
    from capstan.llm.model_files import DEFAULT_SPEC, default_model_dest

    path = Path(os.environ.get("CAPSTAN_MODEL_PATH") or default_model_dest(DEFAULT_SPEC))
    if not path.is_file():
        pytest.skip(
            f"the local model is not assembled at {path}: run `python -m capstan.llm.model_files assemble`"
        )
    pytest.importorskip("llama_cpp")


def test_real_model_puts_the_red_block_in_the_blue_bowl(make_service, serve):
    local_model_or_skip()
    import httpx

    from capstan import llm

    base = serve(make_service(llm=llm.from_config({"CAPSTAN_LLM": "local"})))
    with httpx.Client(base_url=base, timeout=900) as http:
        assert http.get("/healthz").json()["llm"]["provider"] == "local"
        scene = {"objects": ["red block", "blue bowl"], "seed": 7}
        sid = http.post("/v1/sessions", json={"scene": scene}).json()["id"]
        # while the user types, the model reads the new session's scene (CAPSTAN_PREFILL)
        deadline = time.monotonic() + 600
        while 'capstan_prefills_total{outcome="read"} 1' not in http.get("/metrics").text:
            assert time.monotonic() < deadline, http.get("/metrics").text
            time.sleep(0.2)
        t = http.post(
            f"/v1/sessions/{sid}/commands?wait=true", json={"text": "put the red block in the blue bowl"}
        ).json()
    assert t["status"] == "succeeded", (t["error"], t["code"])
    call = t["llm_calls"][0]
    assert call["completion_tokens"] > 0
    # so the command paid only for its own words and the turn's markers, not for the scene
    assert call["prompt_tokens"] - call["cached_prompt_tokens"] <= 16, call
    # how it was answered is in the trace: the threads it started on, its wait for the model, drafts
    assert call["decoding"]["threads"] in (1, 2) and call["decoding"]["queue_s"] >= 0
    assert 0 <= call["decoding"]["draft_accepted"] <= call["decoding"]["draft_tokens"]
    assert 0 < call["ttft_s"] <= call["latency_s"]
    block = t["state_after"]["objects"]["red block"]["position"]
    bowl = t["state_after"]["objects"]["blue bowl"]["position"]
    assert math.dist(block[:2], bowl[:2]) < 0.05, (block, bowl, t["code"])
    assert block[2] < 0.08  # resting in the bowl, not held above it
    assert t["state_after"]["gripper"]["holding"] is None
