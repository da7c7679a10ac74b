"""The local model in process, through llama-cpp-python.

The model is loaded once per process (a registry keyed by file and settings) and shared by every
`LocalProvider`; one lock per model serializes generation. Prompts are rendered with the ChatML
template (`llm.chat_template`); the state after the fixed prefix is reused from memory when the
previous call shared it, else restored from the on-disk prefix cache (`llm.prefix_cache`), else
computed once and saved there. Sampling is greedy at temperature 0.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from capstan.llm.base import Completion, CompletionRequest, LLMError, LLMProvider, ProviderUnavailableError
from capstan.llm.chat_template import END_OF_TEXT, END_OF_TURN, split_open_prompt, split_prompt
from capstan.llm.cpu_share import CpuShare, threads_beside, threads_for_load
from capstan.llm.lookup import DraftLength, accepted, propose
from capstan.llm.model_files import cache_dir
from capstan.llm.prefix_cache import PrefixStateCache, namespace_for

if TYPE_CHECKING:  # imported when a model loads: llama_cpp is heavy
    from llama_cpp import Llama


@dataclass(frozen=True)
class LocalSettings:
    n_ctx: int = 8192
    n_batch: int = 512
    n_threads: int = 2
    seed: int = 1234
    # Use only the cores other processes leave free, checked per call and while it generates
    # (llm.cpu_share).
    adaptive_threads: bool = True
    # Read the weights into memory instead of mapping the file: llama.cpp repacks most of them for
    # its CPU kernels, and mapped, the file's pages stayed resident beside the repacked copy
    # (measured: 1.93 GB PSS mapped, 1.34 GB read, same speed).
    use_mmap: bool = False


@dataclass
class _LoadedModel:
    llama: Llama
    lock: threading.Lock
    path: Path
    settings: LocalSettings
    threads: int = 0
    closed: bool = False
    waiting: int = 0  # calls waiting for `lock`: a prefill gives way to them
    cpu: CpuShare | None = None  # what other processes use of the cores (adaptive threads only)


THREADS_RECHECK_S = 0.5  # while generating, how often the threads are fitted to the free cores again
DRAFT_TOKENS = 8
MAX_DRAFT_TOKENS = 64  # a draft and its token must fit the batch llama.cpp was given (n_batch 512)
PREFILL_CHUNK = 8  # tokens a prefill reads at a time; a call that arrives waits for one chunk at most


_REGISTRY: dict[tuple, _LoadedModel] = {}
_REGISTRY_LOCK = threading.Lock()
_WAITING_LOCK = threading.Lock()


def shared_model(path: Path, settings: LocalSettings) -> _LoadedModel:
    """The process-wide loaded model for (path, settings), loading it on first use."""
    key = (str(Path(path).resolve()), settings)
    with _REGISTRY_LOCK:
        loaded = _REGISTRY.get(key)
        if loaded is None:
            loaded = _REGISTRY[key] = _LoadedModel(
                _load(path, settings),
                threading.Lock(),
                Path(path),
                settings,
                settings.n_threads,
                cpu=CpuShare() if settings.adaptive_threads else None,
            )
        return loaded


def clear_registry() -> None:
    """Forget (and free) every loaded model; the next provider loads afresh, as after a restart."""
    with _REGISTRY_LOCK:
        for loaded in _REGISTRY.values():
            with _WAITING_LOCK:
                loaded.waiting += 1  # a prefill under way stops at its next chunk
            with loaded.lock:
                _free(loaded)
        _REGISTRY.clear()


def _free(loaded: _LoadedModel) -> None:
    """Free a model whose lock the caller holds; later users see it closed and load afresh."""
    loaded.closed = True
    if loaded.cpu is not None:
        loaded.cpu.close()
    loaded.llama.close()


def _free_at_exit() -> None:
    """Free the loaded models while the interpreter still has what llama_cpp's finalizer needs
    (left to the finalizer, it fails during shutdown). A model busy in another thread is left."""
    for loaded in list(_REGISTRY.values()):
        if loaded.lock.acquire(blocking=False):
            try:
                _free(loaded)
            finally:
                loaded.lock.release()


atexit.register(_free_at_exit)


def _load(path: Path, settings: LocalSettings) -> Llama:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ProviderUnavailableError(
            f"llama-cpp-python is not installed ({exc}); `pip install llama-cpp-python` or set CAPSTAN_LLM "
            "to a cloud provider"
        ) from None
    try:
        return Llama(
            model_path=str(path),
            n_ctx=settings.n_ctx,
            n_batch=settings.n_batch,
            n_ubatch=settings.n_batch,
            n_threads=settings.n_threads,
            n_threads_batch=settings.n_threads,
            seed=settings.seed,
            use_mmap=settings.use_mmap,
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise ProviderUnavailableError(
            f"cannot load the GGUF model {path}: {exc}; check the file (python -m capstan.llm.model_files "
            "assemble)"
        ) from None


def default_prefix_cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    return cache_dir(env) / "prefix-cache"


class LocalProvider(LLMProvider):
    name = "local"

    def __init__(
        self,
        model_path: str | Path,
        *,
        settings: LocalSettings | None = None,
        prefix_cache_dir: str | Path | None = None,
        model_name: str | None = None,
        draft_tokens: int = DRAFT_TOKENS,
    ) -> None:
        """`draft_tokens`: greedy answers read up to this many tokens looked up in the prompt
        (`llm.lookup`) with each token they decode (at most MAX_DRAFT_TOKENS); 0 decodes one token
        at a time."""
        self.model_path = Path(model_path)
        self.settings = settings or LocalSettings()
        self.draft_tokens = min(max(0, draft_tokens), MAX_DRAFT_TOKENS)
        self.model = model_name or self.model_path.stem
        self._loaded = shared_model(self.model_path, self.settings)
        directory = Path(prefix_cache_dir) if prefix_cache_dir else default_prefix_cache_dir()
        self.prefix_cache = PrefixStateCache(directory, namespace_for(self.model_path, self.settings.n_ctx))
        llama = self._loaded.llama
        self._eog = {llama.token_eos()} | {
            t
            for s in (END_OF_TURN, END_OF_TEXT)
            for t in llama.tokenize(s.encode(), add_bos=False, special=True)
        }

    def tokenize(self, text: str) -> list[int]:
        return self._current().llama.tokenize(text.encode(), add_bos=False, special=True)

    def complete(self, request: CompletionRequest) -> Completion:
        prefix_text, rest_text = split_prompt(request.messages, request.prefix_messages)
        queued = time.perf_counter()
        loaded = self._locked()
        try:  # ttft and latency count from here; the wait for the lock is queue_s
            start = time.perf_counter()
            prefix = self.tokenize(prefix_text)
            tokens = prefix + self.tokenize(rest_text)
            budget = self.settings.n_ctx - len(tokens)
            if budget <= 0:
                raise LLMError(
                    f"the prompt has {len(tokens)} tokens but the local context holds {self.settings.n_ctx}; "
                    "shorten the prompt (fewer few-shot examples or less history)"
                )
            threads = self._set_threads()
            held_before = _common_prefix(loaded.llama, tokens)
            prefix_source = self._prepare_prefix(prefix)
            # Prompt tokens this call did not evaluate: already in memory, or restored from disk.
            cached = held_before if prefix_source == "computed" else _common_prefix(loaded.llama, tokens)
            completion = self._generate(tokens, min(request.max_tokens, budget), request, start)
        finally:
            loaded.lock.release()
        completion.cached_prompt_tokens = min(cached, len(tokens) - 1)
        completion.extra["prefix_tokens"] = len(prefix)
        completion.extra["prefix_source"] = prefix_source
        completion.extra["queue_s"] = round(start - queued, 4)
        completion.extra["threads"] = threads
        return completion

    def can_prefill(self) -> bool:
        return True

    def prefill(self, request: CompletionRequest, cancel: threading.Event | None = None) -> bool:
        """Read the request's text up to the end of its last message while the model is idle, a few
        tokens at a time, stopping as soon as a call waits for the model. A fixed prefix that is
        neither in memory nor on disk is left for a real call to compute (minutes on a cold start)."""
        loaded = self._current()
        if loaded.waiting or not loaded.lock.acquire(blocking=False):
            return False
        try:
            llama = loaded.llama
            if loaded.closed:
                return False
            prefix_text, open_text = split_open_prompt(request.messages, request.prefix_messages)
            prefix = self.tokenize(prefix_text)
            tokens = prefix + self.tokenize(open_text)
            if len(tokens) >= self.settings.n_ctx:
                return False
            if _common_prefix(llama, prefix) < len(prefix) and not self.prefix_cache.load(llama, prefix):
                return False
            self._set_threads()
            llama.n_tokens = _common_prefix(llama, tokens)  # eval() drops the KV cells beyond n_tokens
            while llama.n_tokens < len(tokens):
                if loaded.waiting or (cancel is not None and cancel.is_set()):
                    return False
                llama.eval(tokens[llama.n_tokens : llama.n_tokens + PREFILL_CHUNK])
            return True
        finally:
            loaded.lock.release()

    def _locked(self) -> _LoadedModel:
        """The current shared model with its lock held (never one that `clear_registry` closed meanwhile)."""
        while True:
            loaded = self._current()
            with _WAITING_LOCK:
                loaded.waiting += 1
            try:
                loaded.lock.acquire()
            finally:
                with _WAITING_LOCK:
                    loaded.waiting -= 1
            if not loaded.closed:
                return loaded
            loaded.lock.release()

    def _current(self) -> _LoadedModel:
        """The shared model; after `clear_registry` the current one (loaded again if need be)."""
        if self._loaded.closed:
            self._loaded = shared_model(self.model_path, self.settings)
        return self._loaded

    def _set_threads(self) -> int:
        import llama_cpp

        want = self.settings.n_threads
        if self._loaded.cpu is not None:
            cpus = os.cpu_count() or 1
            others = self._loaded.cpu.others()
            if others is None:
                want = threads_for_load(want, os.getloadavg()[0], cpus)
            else:
                want = threads_beside(want, others, cpus)
        loaded = self._loaded
        if loaded.threads != want:
            llama_cpp.llama_set_n_threads(loaded.llama.ctx, want, want)
            loaded.threads = want
        return want

    def _prepare_prefix(self, prefix: list[int]) -> str:
        """Make the model state start with `prefix`: "memory", "disk", "computed" or "none"."""
        llama = self._loaded.llama
        if not prefix:
            return "none"
        if _common_prefix(llama, prefix) >= len(prefix):
            return "memory"
        if not self.prefix_cache.worth_caching(prefix):
            return "none"
        if self.prefix_cache.load(llama, prefix):
            return "disk"
        llama.n_tokens = _common_prefix(llama, prefix)  # eval() drops the KV cells beyond n_tokens
        llama.eval(prefix[llama.n_tokens :])
        try:
            self.prefix_cache.save(llama, prefix)
        except OSError as exc:  # a full or read-only cache dir costs speed, not the answer
            print(
                f"capstan: cannot write the prefix cache in {self.prefix_cache.directory}: {exc}",
                file=sys.stderr,
            )
        return "computed"

    def _generate(
        self, tokens: list[int], max_tokens: int, request: CompletionRequest, start: float
    ) -> Completion:
        answer = _Answer(self._loaded.llama, self._eog, [s for s in request.stop if s], max_tokens)
        if request.temperature == 0 and self.draft_tokens > 0:
            ttft = self._decode_with_drafts(tokens, answer, start)
        else:
            ttft = self._decode_sampled(tokens, answer, request, start)
        return Completion(
            text=answer.text,
            model=self.model,
            provider=self.name,
            prompt_tokens=len(tokens),
            completion_tokens=len(answer.tokens),
            latency_s=time.perf_counter() - start,
            ttft_s=ttft,
            finish_reason=answer.finish,
            extra={"draft_tokens": answer.drafted, "draft_accepted": answer.accepted},
        )

    def _decode_sampled(
        self, tokens: list[int], answer: _Answer, request: CompletionRequest, start: float
    ) -> float | None:
        """llama.cpp's own sampler, one token at a time; returns the time to the first token."""
        llama = self._loaded.llama
        ttft = None
        # generate() builds its sampler from this seed, so a seeded sampled request is reproducible
        llama.set_seed(self.settings.seed if request.seed is None else request.seed)
        checked = time.perf_counter()
        for token in llama.generate(
            tokens, temp=request.temperature, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, reset=True
        ):
            now = time.perf_counter()
            if ttft is None:
                ttft = now - start
            checked = self._refit_threads(checked, now)
            if answer.add(token):
                break
        return ttft

    def _decode_with_drafts(self, tokens: list[int], answer: _Answer, start: float) -> float:
        """Greedy decoding that reads a draft (`lookup.propose`) with each token and keeps the part
        of it the model predicts itself; returns the time to the first token."""
        llama = self._loaded.llama
        held = min(_common_prefix(llama, tokens), len(tokens) - 1)  # the last one again, for its logits
        llama.n_tokens = held
        llama.eval(tokens[held:])
        llama._requires_eval = True  # generate() must not sample from the logits this loop leaves
        token = self._argmax(-1)
        ttft = time.perf_counter() - start
        context = list(tokens)
        length = DraftLength(self.draft_tokens)
        checked = time.perf_counter()
        while not answer.add(token):
            context.append(token)
            n_past = llama.n_tokens
            room = min(answer.left, self.settings.n_ctx - n_past - 1)
            draft = propose(context, max_draft=min(length.next(), room))
            predicted = self._read([token, *draft], n_past)
            kept = accepted(draft, predicted)
            length.update(len(draft), kept)
            answer.drafted += len(draft)
            for drafted in draft[:kept]:
                answer.accepted += 1  # the ones after a token that ends the answer are not counted
                if answer.add(drafted):
                    return ttft
                context.append(drafted)
            if kept < len(draft):  # forget the rejected part of the draft
                llama.n_tokens = n_past + 1 + kept
                llama._ctx.kv_cache_seq_rm(-1, llama.n_tokens, -1)
            token = predicted[kept]
            checked = self._refit_threads(checked, time.perf_counter())
        return ttft

    def _refit_threads(self, checked: float, now: float) -> float:
        """Fit the threads to the free cores again when THREADS_RECHECK_S have passed since
        `checked` (another process may have started meanwhile); returns when they were last fitted."""
        if now - checked < THREADS_RECHECK_S:
            return checked
        self._set_threads()
        return now

    def _read(self, batch: list[int], n_past: int) -> list[int]:
        """Read `batch` at positions n_past...; the model's greedy choice after each of its tokens."""
        llama = self._loaded.llama
        llama._ctx.kv_cache_seq_rm(-1, n_past, -1)
        llama._batch.set_batch(batch=batch, n_past=n_past, logits_all=True)
        llama._ctx.decode(llama._batch)
        llama.input_ids[n_past : n_past + len(batch)] = batch
        llama.n_tokens = n_past + len(batch)
        return [self._argmax(i) for i in range(len(batch))]

    def _argmax(self, index: int) -> int:
        """The most likely next token after the last batch's `index`-th token (first of ties, as
        llama.cpp's greedy sampler picks)."""
        llama = self._loaded.llama
        logits = np.ctypeslib.as_array(llama._ctx.get_logits_ith(index), shape=(llama.n_vocab(),))
        return int(logits.argmax())


class _Answer:
    """The tokens generated so far, their text, and whether (and why) the answer is finished."""

    def __init__(self, llama: Llama, eog: set[int], stops: list[str], max_tokens: int):
        self._llama = llama
        self._eog = eog
        self._stops = stops
        self.max_tokens = max_tokens
        self.tokens: list[int] = []
        self.text = ""
        self.finish = "length"
        self.drafted = 0  # draft tokens read, and how many of them the model kept
        self.accepted = 0

    @property
    def left(self) -> int:
        return self.max_tokens - len(self.tokens)

    def add(self, token: int) -> bool:
        """Take the next token; True once the answer is finished (the token may end it unused)."""
        if token in self._eog:
            self.finish = "stop"
            return True
        self.tokens.append(token)
        self.text = self._llama.detokenize(self.tokens).decode("utf-8", errors="ignore")
        hit = min((i for i in (self.text.find(s) for s in self._stops) if i >= 0), default=-1)
        if hit >= 0:
            self.text = self.text[:hit]
            self.finish = "stop"
            return True
        return len(self.tokens) >= self.max_tokens


def _common_prefix(llama, tokens: list[int]) -> int:
    """How many leading `tokens` the model state already holds."""
    n = min(llama.n_tokens, len(tokens))
    held = llama.input_ids[:n]
    for i in range(n):
        if held[i] != tokens[i]:
            return i
    return n
