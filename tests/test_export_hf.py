"""``hessgpt export --format hf``: transformers loads the folder and computes the same logits."""

from __future__ import annotations

import pytest
import torch

from hessgpt.cli import main
from hessgpt.loading import load_model

pytestmark = pytest.mark.usefixtures("one_thread")
transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize(("preset", "hf_class"), [("tiny-gpt2", "GPT2LMHeadModel"), ("tiny-llama", "LlamaForCausalLM")])
def test_transformers_gives_the_same_logits(tmp_path, capsys, gpt2_tok, preset, hf_class):
    ours = load_model(f"preset:{preset}", seed=3)
    ck = ours.save(tmp_path / "m.pt")
    out = tmp_path / "hf"
    assert main(["export", str(ck), "--format", "hf", "--out", str(out)]) == 0, capsys.readouterr().err
    hf = getattr(transformers, hf_class).from_pretrained(out).eval()
    ids = torch.randint(0, 50257, (2, 11), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ours.model(ids)[0]
        got = hf(ids).logits
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-4)
    if preset == "tiny-gpt2":  # and our own importer reads the folder back
        again = load_model(out)
        with torch.no_grad():
            assert torch.allclose(again.model(ids)[0], expected, atol=1e-5)


def test_a_random_preset_is_refused(tmp_path, capsys):
    assert main(["export", "preset:tiny-gpt2", "--format", "hf", "--out", str(tmp_path / "x")]) == 2
    assert "not a random preset" in capsys.readouterr().err
