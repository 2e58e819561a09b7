"""MIDI -> WAV: FluidSynth with a General MIDI soundfont, or a small built-in synth.

FluidSynth (``fluidsynth -ni -F out.wav``) gives real instrument sounds. Without
it, or without a soundfont, or when it fails, a built-in additive synth renders
every note as a few sine partials under an attack-decay-release envelope (drums
as short noise bursts). Either way the result is a mono 16-bit WAV, peak
normalised, written atomically; `Rendered.engine` and `Rendered.note` say which
path was taken and why, so callers can tell the user.

Set ``MUSICGEN_NO_FLUIDSYNTH=1`` to force the built-in synth, and
``MUSICGEN_SOUNDFONT=FILE`` to pick a soundfont without a command-line flag.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen.errors import MusicgenError, ReadError
from musicgen.fsutil import atomic_write_bytes
from musicgen.midi.read import read_score
from musicgen.midi.score import Score

# Debian / Ubuntu / Fedora / Arch places for a General MIDI soundfont, best first.
SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/default.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM2-2.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
)
DEFAULT_RATE = 22050
PEAK = 0.89  # about -1 dBFS
RELEASE_S = 0.12  # built-in synth: fade after note off
MAX_SECONDS = 30 * 60  # refuse to render more than half an hour of audio


@dataclass
class Rendered:
    path: Path
    engine: str  # "fluidsynth" or "builtin"
    note: str  # why the built-in synth was used, or which soundfont was
    seconds: float
    rate: int


def fluidsynth_disabled() -> bool:
    return os.environ.get("MUSICGEN_NO_FLUIDSYNTH", "").strip() not in ("", "0", "false", "no")


def find_fluidsynth() -> str | None:
    if fluidsynth_disabled():
        return None
    return shutil.which("fluidsynth")


def find_soundfont(explicit: str | Path | None = None) -> Path | None:
    """The soundfont given, else $MUSICGEN_SOUNDFONT, else the first usual place that exists."""
    if explicit is not None:
        p = Path(explicit)
        if not p.is_file():
            raise MusicgenError(f"soundfont {p} does not exist")
        if not is_soundfont(p):
            raise MusicgenError(f"{p} is not a SoundFont (no RIFF sfbk header)")
        return p
    env = os.environ.get("MUSICGEN_SOUNDFONT")
    if env and Path(env).is_file() and is_soundfont(Path(env)):
        return Path(env)
    for c in SOUNDFONT_CANDIDATES:
        if Path(c).is_file() and is_soundfont(Path(c)):
            return Path(c)
    return None


def is_soundfont(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return head[:4] == b"RIFF" and head[8:12] == b"sfbk"


def render(
    midi: str | Path,
    out: str | Path,
    *,
    soundfont: str | Path | None = None,
    rate: int = DEFAULT_RATE,
    use_fluidsynth: bool = True,
    score: Score | None = None,
) -> Rendered:
    """Render a MIDI file to a mono 16-bit WAV at `out`."""
    midi, out = Path(midi), Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf = find_soundfont(soundfont)
    exe = find_fluidsynth() if use_fluidsynth else None
    if exe is None:
        why = (
            "FluidSynth disabled"
            if (not use_fluidsynth or fluidsynth_disabled())
            else "FluidSynth not found"
        )
    elif sf is None:
        why = "no General MIDI soundfont found (install fluid-soundfont-gm or pass --soundfont)"
    else:
        why = ""
    if not why:
        try:
            audio = _fluidsynth(exe, sf, midi, rate, _expected_seconds(midi, score))
            _write_wav(out, audio, rate)
            return Rendered(
                out, "fluidsynth", f"FluidSynth with {sf.name}", len(audio) / rate, rate
            )
        except _RenderFailed as exc:
            why = f"FluidSynth failed ({exc})"
    if score is None:
        try:
            score = read_score(midi)
        except ReadError as exc:
            raise MusicgenError(f"{midi}: {exc}") from None
    audio = synthesize(score, rate)
    _write_wav(out, audio, rate)
    return Rendered(out, "builtin", f"built-in synth: {why}", len(audio) / rate, rate)


class _RenderFailed(Exception):
    pass


def _expected_seconds(midi: Path, score: Score | None) -> float:
    if score is None:
        try:
            score = read_score(midi)
        except ReadError as exc:
            raise MusicgenError(f"{midi}: {exc}") from None
    secs = score.duration_seconds
    if secs > MAX_SECONDS:
        raise MusicgenError(
            f"{midi} lasts {secs / 60:.0f} minutes; refusing to render more than {MAX_SECONDS // 60}"
        )
    return secs


def _fluidsynth(exe: str, sf: Path, midi: Path, rate: int, seconds: float) -> np.ndarray:
    # FluidSynth renders far faster than real time; the timeout only stops a hang.
    timeout = 30.0 + seconds
    with tempfile.TemporaryDirectory(prefix="musicgen-render-") as tmp:
        raw = Path(tmp) / "out.wav"
        cmd = [
            exe,
            "-ni",
            "-q",
            "-g",
            "0.6",
            "-T",
            "wav",
            "-F",
            str(raw),
            "-r",
            str(rate),
            str(sf),
            str(midi),
        ]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
            )
        except subprocess.TimeoutExpired:
            raise _RenderFailed(f"no result after {timeout:.0f} s") from None
        except OSError as exc:
            raise _RenderFailed(str(exc)) from None
        if proc.returncode != 0 or not raw.exists() or raw.stat().st_size <= 44:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise _RenderFailed(f"exit {proc.returncode}: {err[-1][:160] if err else 'no output'}")
        try:
            audio = _read_wav_mono(raw)
        except (wave.Error, EOFError, ValueError) as exc:
            raise _RenderFailed(f"unreadable output: {exc}") from None
    if seconds > 0 and not np.any(np.abs(audio) > 1e-4):
        raise _RenderFailed("it rendered silence")
    return audio


def _read_wav_mono(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        ch, width, n = w.getnchannels(), w.getsampwidth(), w.getnframes()
        data = w.readframes(n)
    if width == 2:
        x = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 4:
        x = np.frombuffer(data, dtype="<i4").astype(np.float32) / 2147483648.0
    else:
        raise ValueError(f"{width * 8}-bit samples")
    return x.reshape(-1, ch).mean(axis=1)


def _write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak > 0:
        audio = audio * (PEAK / peak)
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    atomic_write_bytes(path, buf.getvalue())


# --- the built-in synth -----------------------------------------------------------------------

# Partials (multiple of the fundamental, relative amplitude): a soft organ-like tone.
_PARTIALS = ((1, 1.0), (2, 0.4), (3, 0.2), (4, 0.1))


def synthesize(score: Score, rate: int = DEFAULT_RATE) -> np.ndarray:
    """Additive synthesis of every note; returns float32 mono samples (not normalised)."""
    notes = score.notes
    if not len(notes):
        return np.zeros(int(rate * 0.5), dtype=np.float32)
    t0 = score.quarters_to_seconds(notes["start"])
    t1 = score.quarters_to_seconds(notes["start"] + notes["duration"])
    total = float(np.max(t1)) + RELEASE_S + 0.2
    if total > MAX_SECONDS:
        raise MusicgenError(
            f"the piece lasts {total / 60:.0f} minutes; refusing to render more than {MAX_SECONDS // 60}"
        )
    out = np.zeros(int(np.ceil(total * rate)) + 1, dtype=np.float32)
    rng = np.random.default_rng(0)
    attack = int(0.01 * rate)
    release = int(RELEASE_S * rate)
    for s, e, pitch, vel, drum in zip(
        t0.tolist(),
        t1.tolist(),
        notes["pitch"].tolist(),
        notes["velocity"].tolist(),
        notes["drum"].tolist(),
        strict=True,
    ):
        amp = 0.15 * (max(vel, 1) / 127.0) ** 1.5
        i0 = int(s * rate)
        if drum:
            n = int(0.08 * rate)
            seg = rng.standard_normal(n).astype(np.float32) * np.exp(
                -np.arange(n) / (0.02 * rate)
            ).astype(np.float32)
            out[i0 : i0 + n] += amp * seg[: len(out) - i0]
            continue
        hold = max(int((e - s) * rate), attack + 1)
        n = hold + release
        t = np.arange(n, dtype=np.float32) / rate
        f = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
        wave_ = np.zeros(n, dtype=np.float32)
        for k, a in _PARTIALS:
            if f * k < rate / 2:
                wave_ += a * np.sin(2 * np.pi * f * k * t)
        env = np.ones(n, dtype=np.float32)
        env[:attack] = np.linspace(0.0, 1.0, attack, endpoint=False)
        env[attack:hold] = np.exp(-(t[attack:hold] - t[attack]) * 1.5)  # gentle decay while held
        env[hold:] = env[hold - 1] * np.linspace(1.0, 0.0, n - hold)
        seg = amp * wave_ * env
        end = min(i0 + n, len(out))
        out[i0:end] += seg[: end - i0]
    return out


def wav_info(path: str | Path) -> dict:
    """Channels, rate, frames, seconds and peak of a WAV (for checks and tests)."""
    with wave.open(str(path), "rb") as w:
        ch, rate, width, n = w.getnchannels(), w.getframerate(), w.getsampwidth(), w.getnframes()
        data = w.readframes(n)
    x = np.frombuffer(data, dtype="<i2") if width == 2 else np.zeros(0)
    return {
        "channels": ch,
        "rate": rate,
        "sample_width": width,
        "frames": n,
        "seconds": n / rate if rate else 0.0,
        "peak": int(np.max(np.abs(x.astype(np.int32)))) if len(x) else 0,
    }
