"""Name -> core class. `ModelConfig.name` picks the entry."""

from __future__ import annotations

from torch import nn

from musicgen.config import MODEL_NAMES, ModelConfig
from musicgen.models.gru import GRUCore
from musicgen.models.gru_attention import GRUAttentionCore
from musicgen.models.transformer import TransformerCore

# One class per name of config.MODEL_NAMES (the one list of names), in that order.
CORES: dict[str, type[nn.Module]] = dict(
    zip(MODEL_NAMES, (GRUCore, GRUAttentionCore, TransformerCore), strict=True)
)


def build_core(cfg: ModelConfig) -> nn.Module:
    """A fresh core for `cfg`; every core maps (tokens (B, T), state) -> (logits, state)."""
    if cfg.vocab_size < 1:
        raise ValueError("vocab_size must be set (at least 1) before building a model")
    try:
        core = CORES[cfg.name]
    except KeyError:
        raise ValueError(f"no core registered as {cfg.name!r}; known: {', '.join(CORES)}") from None
    return core(cfg)
