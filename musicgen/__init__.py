"""musicgen: train sequence models on your own MIDI, generate, listen and compare."""

# Bumped whenever what ingestion writes changes: a dataset of another version is parsed again.
__version__ = "0.2.0"
