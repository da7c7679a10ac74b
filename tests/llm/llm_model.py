"""Find the assembled local model for the @pytest.mark.model tests, or skip with the reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from capstan.llm.model_files import DEFAULT_SPEC, default_model_dest


def model_path_or_skip() -> Path:
    explicit = os.environ.get("CAPSTAN_MODEL_PATH")
    path = Path(explicit) if explicit else default_model_dest(DEFAULT_SPEC)
    if not path.is_file():
        pytest.skip(
            f"the local model is not assembled at {path}: run `python -m capstan.llm.model_files assemble`"
        )
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pytest.skip("llama-cpp-python is not installed")
    return path
