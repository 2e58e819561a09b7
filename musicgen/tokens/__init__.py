"""Score <-> token ids: the alphabet (space), the encoding, the one stream interpreter,
the choice of clock, and the corpus vocabulary."""

from musicgen.tokens.encoding import Encoded, decode, encode, score_grid
from musicgen.tokens.space import token_space
from musicgen.tokens.stream import Stream
from musicgen.tokens.timebase import choose_time, resolve_time
from musicgen.tokens.vocab import Vocabulary

__all__ = [
    "Encoded",
    "Stream",
    "Vocabulary",
    "choose_time",
    "decode",
    "encode",
    "resolve_time",
    "score_grid",
    "token_space",
]
