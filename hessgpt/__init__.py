"""HessGPT: small GPT-style language models, their tokenizers, checkpoints and inference."""

from hessgpt.errors import HessError

__version__ = "0.1.0"
__all__ = ["HessError", "load_model", "__version__"]


def load_model(path_or_name, seed: int = 0):
    """Load a model file or name; see :func:`hessgpt.loading.load_model`."""
    from hessgpt.loading import load_model as _load

    return _load(path_or_name, seed=seed)
