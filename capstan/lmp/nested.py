"""LMPs that policy code calls at run time: parse_obj_name, parse_position, parse_question,
transform_shape_pts. Each is a host function: on the trusted side it asks the model for a small
program, runs that program in the sandbox (its own worker) with the perception functions only,
and returns the program's `ret_val` as plain data."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from capstan.llm.base import LLMError
from capstan.lmp.calls import LLMCaller
from capstan.lmp.executor import PolicyExecutor
from capstan.lmp.extract import extract_code
from capstan.lmp.prompt import PromptSpec, build_request, describe_api
from capstan.lmp.scene import pure_reads, scene_objects
from capstan.primitives.api import SCENE_READS, PolicyAPI, describe_functions
from capstan.primitives.errors import InvalidArgumentError, PrimitiveError
from capstan.primitives.jsondata import plain

NESTED = ("parse_obj_name", "parse_position", "parse_question", "transform_shape_pts")
MAX_ASKED = 24  # new questions to the model per program run: a loop of them would run for hours


class NestedLMPs:
    def __init__(
        self,
        caller: LLMCaller,
        sandbox: PolicyExecutor,
        prompts: dict[str, PromptSpec],
        api: PolicyAPI,
        api_text: str,
        prelude: Callable[[], str],
        cancel: threading.Event | None = None,
        timeout_s: float = 30.0,
    ):
        self.caller = caller
        self.sandbox = sandbox
        self.prompts = prompts
        self.api = api
        self.api_text = api_text
        self.prelude = prelude
        self.cancel = cancel
        self.timeout_s = timeout_s
        # the model's program per request: a dry run and the real run that follows ask the same
        # questions of the same scene, and pay for each answer once
        self._programs: dict[str, str] = {}
        # a failure of the model itself, kept for the run to report as one (the program only sees
        # that its call failed): no repair can mend a provider that is down
        self.llm_failure: LLMError | None = None
        self._asked = 0
        self._deadline: float | None = None

    def begin(self, timeout_s: float) -> None:
        """A program run starts: its nested programs share its time limit and its count of questions."""
        self._asked = 0
        self._deadline = time.monotonic() + timeout_s
        self.llm_failure = None

    def _time_left(self) -> float:
        """What is left of the calling program's time limit (all of `timeout_s` outside a run)."""
        if self._deadline is None:
            return self.timeout_s
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise PrimitiveError("the program's time limit is reached")
        return min(self.timeout_s, left)

    def functions(self) -> dict[str, Callable]:
        return {
            "parse_obj_name": self.parse_obj_name,
            "parse_position": self.parse_position,
            "parse_question": self.parse_question,
            "transform_shape_pts": self.transform_shape_pts,
        }

    def parse_obj_name(self, description: str):
        """Object name(s) matching a description, e.g. 'the blocks left of the bowl' -> list of names."""
        return self._run("parse_obj_name", _text(description))

    def parse_position(self, description: str) -> np.ndarray:
        """[x, y] of a described position, e.g. 'a point 10cm left of the red block'."""
        value = self._run("parse_position", _text(description))
        return _points(value, "parse_position", shape=(2,))

    def parse_question(self, question: str) -> str:
        """Answer a question about the scene, e.g. 'how many blocks are left of the bowl?'."""
        return str(self._run("parse_question", _text(question)))

    def transform_shape_pts(self, description: str, shape_pts) -> np.ndarray:
        """Transform an (N, 2) array of points as described, e.g. 'move it 10cm to the right'."""
        pts = _points(shape_pts, "transform_shape_pts")
        head = f"shape_pts = np.array({pts.tolist()!r})\n"
        return _points(self._run("transform_shape_pts", _text(description), head), "transform_shape_pts")

    def _run(self, lmp: str, query: str, head: str = "") -> Any:
        spec = self.prompts[lmp]
        objects, positions = scene_objects(self.api)
        request = build_request(spec, {"api": self.api_text}, query, objects, positions)
        key = request.key(lmp)
        asked = key not in self._programs
        if asked:
            self._asked += 1
            if self._asked > MAX_ASKED:
                raise PrimitiveError(
                    f"{lmp}({query!r}): a program may ask the model at most {MAX_ASKED} new questions "
                    "through parse_* and transform_shape_pts; ask fewer (compute the rest from their answers)"
                )
            try:
                self._programs[key] = extract_code(self.caller(lmp, request).text)
            except LLMError as exc:
                self.llm_failure = exc
                raise PrimitiveError(f"{lmp}({query!r}): the language model failed: {exc}") from None
        code = self._programs[key]
        if not code:
            raise PrimitiveError(f"{lmp}({query!r}) got no code from the model; rephrase the request")
        # a nested LMP reads the scene, never moves anything
        hosts = {n: f for n, f in self.api.functions().items() if n in SCENE_READS}
        result = self.sandbox.run(
            self.prelude() + head + code,
            host_functions=hosts,
            timeout_s=self._time_left(),
            return_names=("ret_val",),
            cancel=self.cancel,
            pure=[n for n in pure_reads(self.api) if n in hosts],
        )
        if result.error is not None:
            raise PrimitiveError(f"{lmp}({query!r}) failed: {result.error.kind}: {result.error.message}")
        if "ret_val" not in result.values:
            raise PrimitiveError(f"{lmp}({query!r}) produced no answer (its program never set ret_val)")
        answer = result.values["ret_val"]
        if asked and self.caller.on_event is not None:  # its own trace item, beside its llm_call
            self.caller.on_event(
                "nested_lmp", {"lmp": lmp, "query": query, "code": code, "answer": plain(answer)}
            )
        return answer


def describe_nested() -> str:
    """The nested LMPs as policy code sees them: signatures and what they return."""
    return describe_functions({name: getattr(NestedLMPs, name) for name in NESTED})


def policy_api_text(api: PolicyAPI) -> str:
    """What the main prompt and fgen list: the primitives, then the nested LMPs policy code may call."""
    return describe_api(api.describe()) + "\n" + describe_nested()


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"expected a non-empty description string, got {value!r}")
    return value.strip()


def _points(value: Any, who: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgumentError(f"{who}: expected numbers, got {value!r}") from exc
    if shape is not None and arr.shape != shape:
        if not (arr.size >= 2 and arr.ndim == 1):
            raise InvalidArgumentError(f"{who}: expected shape {shape}, got {arr.shape}")
        arr = arr[:2]
    if not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"{who}: result has NaN or inf: {arr.tolist()}")
    return arr
