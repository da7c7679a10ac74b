"""Model file assembly from chunk wheels: fake chunk sets in a tmp dir, plus the real installed wheels."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from capstan.llm import model_files
from capstan.llm.model_files import (
    DEFAULT_SPEC,
    ModelFilesError,
    ModelSpec,
    assemble,
    resolve_model_path,
    verify,
)


def make_chunks(tmp_path: Path, parts: int = 4, size: int = 1000, version: str = "0.2.0"):
    """Write `parts` random chunks; returns (spec, locator) describing them like the real wheels."""
    chunk_dir = tmp_path / "chunks"
    chunk_dir.mkdir()
    data = b""
    for n in range(1, parts + 1):
        blob = os.urandom(size + n)
        (chunk_dir / f"part{n:02d}.bin").write_bytes(blob)
        data += blob
    spec = ModelSpec(
        filename="fake.gguf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        hf_repo_id="nobody/fake",
        wheel_prefix="fake-model-part",
        wheel_version="0.2.0",
        parts=parts,
    )

    def locator(n: int):
        return version, chunk_dir / f"part{n:02d}.bin"

    return spec, locator, data


def test_assembles_in_order_and_verifies(tmp_path):
    spec, locator, data = make_chunks(tmp_path)
    path = assemble(tmp_path / "models" / "fake.gguf", spec, locator, progress=False)
    assert path.read_bytes() == data
    assert not list(path.parent.glob(".*.tmp"))  # the temp file was renamed, not left behind


def test_assemble_is_idempotent_and_trusts_a_fresh_stamp(tmp_path, monkeypatch):
    spec, locator, _ = make_chunks(tmp_path)
    dest = tmp_path / "fake.gguf"
    assemble(dest, spec, locator, progress=False)
    mtime = dest.stat().st_mtime_ns

    def no_rehash(*a, **k):
        raise AssertionError("re-hashed a file whose stamp is fresh")

    monkeypatch.setattr(model_files, "sha256_file", no_rehash)
    assert assemble(dest, spec, locator, progress=False) == dest
    assert dest.stat().st_mtime_ns == mtime


def test_changed_file_is_rehashed_and_rebuilt(tmp_path):
    spec, locator, data = make_chunks(tmp_path)
    dest = assemble(tmp_path / "fake.gguf", spec, locator, progress=False)
    corrupt = bytearray(data)
    corrupt[10] ^= 0xFF
    dest.write_bytes(bytes(corrupt))  # same size, new mtime: the stamp no longer vouches for it
    with pytest.raises(ModelFilesError, match="sha256"):
        verify(dest, spec)
    assert assemble(dest, spec, locator, progress=False).read_bytes() == data


def test_wrong_chunk_version_names_the_pinned_install(tmp_path):
    spec, locator, _ = make_chunks(tmp_path, version="0.1.9")
    with pytest.raises(
        ModelFilesError, match=r"expected 0\.2\.0.*pip install fake-model-part\{1\.\.4\}==0\.2\.0"
    ):
        assemble(tmp_path / "fake.gguf", spec, locator, progress=False)


def test_corrupt_chunk_fails_before_anything_is_installed(tmp_path):
    spec, locator, _ = make_chunks(tmp_path)
    chunk = tmp_path / "chunks" / "part02.bin"
    blob = bytearray(chunk.read_bytes())
    blob[0] ^= 0xFF
    chunk.write_bytes(bytes(blob))
    with pytest.raises(ModelFilesError, match="corrupt"):
        assemble(tmp_path / "fake.gguf", spec, locator, progress=False)
    assert not (tmp_path / "fake.gguf").exists() and not list(tmp_path.glob(".*.tmp"))


def test_missing_chunk_file_is_named(tmp_path):
    spec, locator, _ = make_chunks(tmp_path)
    (tmp_path / "chunks" / "part03.bin").unlink()
    with pytest.raises(ModelFilesError, match="part03.bin"):
        assemble(tmp_path / "a.gguf", spec, locator, progress=False)


def test_chunks_of_the_wrong_total_size_are_refused(tmp_path):
    spec, locator, _ = make_chunks(tmp_path)
    bigger = ModelSpec(**{**spec.__dict__, "size": spec.size + 1})
    with pytest.raises(ModelFilesError, match="add up to"):
        assemble(tmp_path / "b.gguf", bigger, locator, progress=False)


def test_uninstalled_wheels_say_how_to_install_them():
    spec = ModelSpec(**{**DEFAULT_SPEC.__dict__, "wheel_prefix": "capstan-no-such-model-part"})
    with pytest.raises(ModelFilesError, match=r"pip install capstan-no-such-model-part\{1\.\.22\}==0\.2\.0"):
        model_files.metadata_chunk_locator(spec)(1)


def test_resolve_prefers_explicit_path_then_hub_cache_then_wheels(tmp_path):
    spec, locator, data = make_chunks(tmp_path)
    explicit = tmp_path / "mine.gguf"
    explicit.write_bytes(b"gguf")
    env = {
        "CAPSTAN_MODEL_PATH": str(explicit),
        "CAPSTAN_CACHE_DIR": str(tmp_path / "cache"),
        "HF_HUB_CACHE": str(tmp_path / "hf"),
    }
    assert resolve_model_path(env, spec, locator, progress=False) == explicit

    # A Hugging Face cache hit (the layout hf_hub_download(local_files_only=True) reads).
    repo = tmp_path / "hf" / "models--nobody--fake"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123456789abcdef0123456789abcdef01234567")
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snapshot.mkdir(parents=True)
    (snapshot / "fake.gguf").write_bytes(data)
    del env["CAPSTAN_MODEL_PATH"]
    assert resolve_model_path(env, spec, locator, progress=False) == snapshot / "fake.gguf"

    # No hub cache and no download allowed: the wheels are assembled under CAPSTAN_CACHE_DIR.
    env["HF_HUB_CACHE"] = str(tmp_path / "empty-hf")
    path = resolve_model_path(env, spec, locator, progress=False)
    assert path == tmp_path / "cache" / "models" / "fake.gguf" and path.read_bytes() == data


def test_cli_path_and_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CAPSTAN_MODEL_PATH", str(tmp_path / "absent.gguf"))
    assert model_files.main(["path", "--quiet"]) == 1
    assert "CAPSTAN_MODEL_PATH" in capsys.readouterr().err


@pytest.mark.model
def test_cli_assemble_is_idempotent_and_prints_the_path():
    import subprocess
    import sys

    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "capstan.llm.model_files", "assemble", "--quiet"],
            check=False,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(model_files.default_model_dest())
    verify(model_files.default_model_dest())  # the stamp (or a re-hash) vouches for the file


@pytest.mark.model
def test_real_wheels_assemble_to_the_pinned_hash(tmp_path):
    path = assemble(tmp_path / DEFAULT_SPEC.filename, progress=False)
    assert path.stat().st_size == 1_117_320_768
    assert model_files.sha256_file(path) == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def test_a_damaged_copy_in_the_hub_cache_is_not_loaded(tmp_path, capsys):
    """A download cut short: the hub's copy fails its size check, the wheels are assembled instead."""
    spec, locator, data = make_chunks(tmp_path)
    repo = tmp_path / "hf" / "models--nobody--fake"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123456789abcdef0123456789abcdef01234567")
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snapshot.mkdir(parents=True)
    (snapshot / "fake.gguf").write_bytes(data[: len(data) // 2])
    env = {"CAPSTAN_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_CACHE": str(tmp_path / "hf")}
    path = resolve_model_path(env, spec, locator, progress=False)
    assert path == tmp_path / "cache" / "models" / "fake.gguf" and path.read_bytes() == data
    assert "not using the Hugging Face cache's copy" in capsys.readouterr().err
