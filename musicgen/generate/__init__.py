"""Generation: songs from a checkpoint, passages written again (infill), parts written
around a kept one (accompany).

    sampling.py    pure functions on logits (temperature, top-k, nucleus, masks)
    decoder.py     the step-wise decoder every task drives (and live play will)
    rules.py       the per-row rules base: grammar, length, forcing, biases
    songs.py       generate_songs: a new piece or a primer continued
    output.py      MIDI files with their sidecars, and the command that redraws them
    infill.py, accompany.py, primer.py, piece.py, form.py, repetition.py
"""

from musicgen.config import GenerateConfig
from musicgen.generate.accompany import accompany_songs
from musicgen.generate.infill import fill_middles, infill_songs
from musicgen.generate.output import regenerate_command, rewrite_command, write_songs
from musicgen.generate.songs import Song, form_of, generate_songs, tokens_to_score

__all__ = [
    "GenerateConfig",
    "Song",
    "accompany_songs",
    "fill_middles",
    "form_of",
    "generate_songs",
    "infill_songs",
    "regenerate_command",
    "rewrite_command",
    "tokens_to_score",
    "write_songs",
]
