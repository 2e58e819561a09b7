"""Listening and comparing: audio rendering, piano rolls, objective statistics, comparison pages.

* `render.render` - MIDI -> WAV through FluidSynth, or a built-in synth without it.
* `pianoroll.draw_pianoroll` - Score -> PNG piano roll.
* `metrics` - per-piece statistics, repetition and memorisation, Yang & Lerch set overlap.
* `compare.run_compare` - several checkpoints on one primer -> an offline HTML page.
"""
