"""On-disk cache of the model state after a fixed prompt prefix, so a restart stays warm.

One file per prefix under `$CAPSTAN_CACHE_DIR/prefix-cache/<namespace>/<sha256 of the token ids>.state`,
written by llama.cpp's session-file API (`llama_state_save_file`, exposed by llama-cpp-python):
it holds the KV cache for exactly the prefix tokens plus the tokens themselves, which are checked
on load. The namespace hashes the model file, context size and llama.cpp version, because a state
only fits the context it came from. We use the session-file API rather than `Llama.save_state`
because the latter also copies the n_batch x n_vocab logits buffer (~300 MB for Qwen) on every save.
Files are written to a temp name and renamed; the least recently used are evicted beyond `max_bytes`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path


def namespace_for(model_path: Path, n_ctx: int) -> str:
    import llama_cpp

    st = model_path.stat()
    blob = f"{model_path.name}|{st.st_size}|{n_ctx}|{llama_cpp.__version__}"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class PrefixStateCache:
    def __init__(
        self, directory: Path, namespace: str, max_bytes: int = 4 << 30, min_tokens: int = 32
    ) -> None:
        self.directory = Path(directory) / namespace
        self.max_bytes = max_bytes
        self.min_tokens = min_tokens

    def path_for(self, tokens: Sequence[int]) -> Path:
        digest = hashlib.sha256(",".join(map(str, tokens)).encode()).hexdigest()
        return self.directory / f"{digest}.state"

    def worth_caching(self, tokens: Sequence[int]) -> bool:
        return len(tokens) >= self.min_tokens

    def load(self, llm, tokens: Sequence[int]) -> bool:
        """Restore the state after `tokens` into `llm`; False (and llm left empty) on a miss."""
        import llama_cpp

        path = self.path_for(tokens)
        if not path.is_file():
            return False
        capacity = len(tokens) + 1
        out = (llama_cpp.llama_token * capacity)()
        count = ctypes.c_size_t(0)
        count_out = ctypes.pointer(count)
        ok = llama_cpp.llama_state_load_file(llm.ctx, str(path).encode(), out, capacity, count_out)
        if not ok or list(out[: count.value]) != list(tokens):
            llm.n_tokens = 0  # the next eval clears whatever was partly restored
            path.unlink(missing_ok=True)
            return False
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        os.utime(path)  # least recently used eviction goes by mtime
        return True

    def save(self, llm, tokens: Sequence[int]) -> Path | None:
        """Write `llm`'s current state, which must hold exactly `tokens`."""
        import llama_cpp

        if llm.n_tokens != len(tokens) or list(llm.input_ids[: len(tokens)]) != list(tokens):
            raise ValueError("the model state does not hold exactly the prefix tokens")
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(tokens)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        array = (llama_cpp.llama_token * len(tokens))(*tokens)
        try:
            if not llama_cpp.llama_state_save_file(llm.ctx, str(tmp).encode(), array, len(tokens)):
                return None
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self.evict()
        return path

    def evict(self) -> None:
        """Delete the least recently used states until the directory fits in `max_bytes`."""
        files = []
        for path in self.directory.glob("*.state"):
            try:
                st = path.stat()
            except FileNotFoundError:  # another process evicted it first
                continue
            files.append((st.st_mtime, st.st_size, path))
        files.sort()
        total = sum(size for _, size, _ in files)
        for _, size, path in files:
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
