"""End to end with the REAL local model: one command over HTTP moves the block into the bowl."""

from __future__ import annotations

import math
import os
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
        t = http.post(
            f"/v1/sessions/{sid}/commands?wait=true", json={"text": "put the red block in the blue bowl"}
        ).json()
    assert t["status"] == "succeeded", (t["error"], t["code"])
    assert t["llm_calls"] and t["llm_calls"][0]["completion_tokens"] > 0
    block = t["state_after"]["objects"]["red block"]["position"]
    bowl = t["state_after"]["objects"]["blue bowl"]["position"]
    assert math.dist(block[:2], bowl[:2]) < 0.05, (block, bowl, t["code"])
    assert block[2] < 0.08  # resting in the bowl, not held above it
    assert t["state_after"]["gripper"]["holding"] is None
