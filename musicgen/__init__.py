"""musicgen: train sequence models on your own MIDI, generate, listen and compare."""

__version__ = "0.1.0"
