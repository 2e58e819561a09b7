"""Reading and writing music files. Bytes in, `Score` out, and back."""

from musicgen.midi.read import SUPPORTED_SUFFIXES, read_score
from musicgen.midi.score import NOTE_DTYPE, Score
from musicgen.midi.write import score_to_midi_bytes, write_midi

__all__ = [
    "NOTE_DTYPE",
    "Score",
    "SUPPORTED_SUFFIXES",
    "read_score",
    "score_to_midi_bytes",
    "write_midi",
]
