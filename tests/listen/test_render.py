"""Audio rendering: FluidSynth when present, the built-in synth when forced or missing."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from musicgen.cli import cli
from musicgen.errors import MusicgenError
from musicgen.listen import render as R
from musicgen.listen.pianoroll import png_size
from musicgen.midi.score import NOTE_DTYPE, Score
from musicgen.midi.write import write_midi

from .conftest import song

HAVE_FLUIDSYNTH = R.shutil.which("fluidsynth") is not None and R.find_soundfont() is not None


@pytest.fixture
def midi(tmp_path):
    return write_midi(song(0, bars=2), tmp_path / "two-bars.mid")


def check_wav(path, seconds: float) -> dict:
    info = R.wav_info(path)
    assert info["channels"] == 1
    assert info["rate"] == R.DEFAULT_RATE
    assert info["sample_width"] == 2
    assert info["frames"] > 0
    assert info["peak"] > 10_000  # peak-normalised, clearly not silent
    assert seconds - 0.05 <= info["seconds"] <= seconds + 5  # FluidSynth may add a reverb tail
    return info


@pytest.mark.skipif(
    not HAVE_FLUIDSYNTH, reason="fluidsynth or a General MIDI soundfont is not installed"
)
def test_fluidsynth_renders_a_mono_wav(midi, tmp_path, monkeypatch):
    monkeypatch.delenv("MUSICGEN_NO_FLUIDSYNTH", raising=False)
    r = R.render(midi, tmp_path / "out.wav")
    assert r.engine == "fluidsynth", r.note
    assert "FluidSynth" in r.note
    check_wav(r.path, song(0, bars=2).duration_seconds)


def test_builtin_synth_forced_by_the_environment(midi, tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICGEN_NO_FLUIDSYNTH", "1")
    r = R.render(midi, tmp_path / "out.wav")
    assert r.engine == "builtin"
    assert "disabled" in r.note
    check_wav(r.path, song(0, bars=2).duration_seconds)


def test_builtin_synth_without_a_soundfont(midi, tmp_path, monkeypatch):
    monkeypatch.setattr(R, "SOUNDFONT_CANDIDATES", ())
    monkeypatch.delenv("MUSICGEN_SOUNDFONT", raising=False)
    r = R.render(midi, tmp_path / "out.wav")
    assert r.engine == "builtin"
    assert ("soundfont" in r.note) or ("FluidSynth not found" in r.note) or ("disabled" in r.note)


def test_a_file_that_is_not_a_soundfont_is_refused(midi, tmp_path):
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"not a soundfont at all")
    with pytest.raises(MusicgenError, match="not a SoundFont"):
        R.render(midi, tmp_path / "out.wav", soundfont=bad)


def test_builtin_synth_plays_the_right_pitch():
    notes = np.zeros(1, dtype=NOTE_DTYPE)
    notes[0] = (0.0, 2.0, 69, 100, 0, False)  # A4 for two quarters at 120 qpm = 1 s
    audio = R.synthesize(Score(notes=notes, tempos=[(0.0, 120.0)]), rate=8000)
    spectrum = np.abs(np.fft.rfft(audio[:8000]))
    peak_hz = np.argmax(spectrum) * 8000 / 8000
    assert abs(peak_hz - 440) <= 2
    assert len(audio) / 8000 == pytest.approx(1.0 + R.RELEASE_S + 0.2, abs=0.01)


def test_render_command_writes_wav_and_piano_roll(midi, tmp_path):
    out, png = tmp_path / "x.wav", tmp_path / "x.png"
    result = CliRunner().invoke(
        cli, ["render", str(midi), "--out", str(out), "--png", str(png), "--builtin"]
    )
    assert result.exit_code == 0, result.output
    assert "built-in synth" in result.output  # it says which synth it used
    assert R.wav_info(out)["frames"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png_size(png) == (1000, 350)


def test_render_command_on_a_broken_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd garbage")
    result = CliRunner().invoke(cli, ["render", str(bad), "--builtin"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert result.output.startswith("error: ")
