"""The musical measures every other layer reads: bars, per-bar features, key, form.

This is the lowest music layer: it imports only the score type (musicgen.midi.score)
and numpy, so that data (control tokens), generation (control rules, form-aware
sampling) and listening (metrics) all use one definition of each measure.
"""
