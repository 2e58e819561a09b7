"""Score <-> events <-> token ids, and the corpus vocabulary."""

from musicgen.tokens.encoding import Encoded, decode, encode, score_grid, token_space
from musicgen.tokens.vocab import Vocabulary

__all__ = ["Encoded", "Vocabulary", "decode", "encode", "score_grid", "token_space"]
