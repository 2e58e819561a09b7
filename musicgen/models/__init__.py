"""Sequence model cores. Each maps (tokens (B, T), state) -> (logits (B, T, V), state);
state=None starts a sequence and the returned state continues it exactly."""

from musicgen.models.gru import GRUCore
from musicgen.models.gru_attention import GRUAttentionCore
from musicgen.models.registry import CORES, build_core
from musicgen.models.transformer import TransformerCore

__all__ = ["CORES", "GRUAttentionCore", "GRUCore", "TransformerCore", "build_core"]
