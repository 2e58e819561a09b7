"""Sampling, length and the tasks of generation (infill, accompany)."""

from __future__ import annotations

from dataclasses import dataclass

from musicgen.config.controls import BAR_CONTROLS, key_name, parse_key, parse_levels, show_levels
from musicgen.config.encoding import DRUMS
from musicgen.config.fields import opt
from musicgen.errors import MusicgenError

LENGTH_UNITS = ("bars", "seconds", "notes", "tokens")
PRIORS = ("corpus", "model")

# The settings of each token's draw, which every task takes; a whole piece also takes the
# pulls that shape its form (a passage's ends, or the kept part, hold the form there).
PASSAGE_SAMPLING = ("temperature", "top_k", "top_p", "seed")
SAMPLING = (
    *PASSAGE_SAMPLING,
    "repeat_bias",
    "form_bias",
    "loop_limit",
    "silence_limit",
    "entry_guard",
    "drawn_texture",
)
CONTROLS = (*BAR_CONTROLS, "key")  # what every task that writes music can be asked for
# the options of every command that takes controls
CONTROL_OPTIONS = (*CONTROLS, "key_pull", "guidance")

# How strongly an asked key pulls each pitch by default: the logit of a pitch class gets
# this times the log of its Krumhansl-Kessler rating in the key (analysis/key.py), relative
# to the tonic's. The learnt Key token alone sets only the first notes (the models learnt
# it weakly: later the notes already say the key), so a piece drifts to the corpus's keys.
# Chosen on the folk gru fine-tune (benchmarks/controls.py, docs/results.md "Controls").
KEY_PULL = 3.0
# The most a key that `--prior corpus` drew (not one the user asked for) pulls: there the
# key is a hint to sound like the corpus, and the full pull made melodies cling to the
# tonic triad (the pitch-class entropy overlap of the folk fine-tunes fell from 0.91 to
# 0.23, areas >= 0.7 from 13 to 9; docs/results.md "Controls").
DRAWN_KEY_PULL = 1.0


def parse_instruments(text: str) -> tuple[int, ...]:
    """ "0,33,25,drums" -> (0, 25, 33, 128): General MIDI programs, and DRUMS for the kit."""
    out = set()
    for part in (p.strip().lower() for p in text.split(",")):
        if part in ("drums", "drum", "kit"):
            out.add(DRUMS)
        elif part.isdigit() and 0 <= int(part) <= 127:
            out.add(int(part))
        else:
            raise MusicgenError(
                f"--instruments: {part!r} is not a General MIDI program 0-127 or 'drums'"
            )
    if not out:
        raise MusicgenError("--instruments needs at least one instrument")
    return tuple(sorted(out))


def instrument_name(program: int) -> str:
    return "drums" if program == DRUMS else str(program)


# Classifier-free guidance on the controls asked for, by default (GenerateConfig.guidance):
# chosen on the Bach gru (benchmarks/controls.py; docs/results.md "Guidance"), the bars
# within one level of the one asked at 0 / 1 / 2 / 4: density 77 / 92 / 97 / 97%,
# polyphony 61 / 73 / 84 / 88%, register 81 / 91 / 93 / 94%; the key as asked (pull 3)
# 89 / 93 / 92 / 98%. Live play takes none unless asked (see the option's help).
GUIDANCE = 4.0
# Far past any use (the controls' pull saturates by 4), and short of logits that overflow.
MAX_GUIDANCE = 100.0


def guidance_of(cfg) -> float:
    """The guidance `cfg` asks for, its default settled."""
    return GUIDANCE if cfg.guidance is None else cfg.guidance


# The pull of form-aware sampling by default, chosen by benchmarks/form.py (docs/results.md, Form).
FORM_BIAS = 8.0


@dataclass(frozen=True)
class GenerateConfig:
    """Sampling and length settings of `musicgen generate`; saved in every song's sidecar."""

    num_samples: int = opt(1, "Songs to generate (decoded together as one batch).", short="-n")
    temperature: float = opt(1.0, "Softmax temperature; 0 is greedy.", short="-t")
    top_k: int = opt(0, "Sample from the k likeliest tokens (0 = off).")
    # 0.98, chosen by benchmarks/form.py: a tighter nucleus re-strikes chords (longer repeats
    # than the corpus's), none at all lets off-key notes through (docs/results.md, Form)
    top_p: float = opt(
        0.98, "Nucleus sampling: the smallest set of tokens whose probability reaches p (1 = off)."
    )
    seed: int = opt(0, "Random seed; the same seed and settings give the same MIDI bytes.")
    unit: str = opt("bars", "One of LENGTH_UNITS; counts new music, not the primer.", cli=False)
    # one option per unit (--bars 16, --seconds 30 ...): its flag is the unit's name
    length: float = opt(16, "How much new music, in `unit`s.", flag=lambda cfg: cfg.unit)
    primer: str | None = opt(None, "MIDI file to continue.")
    primer_bars: int | None = opt(None, "Use only the primer's first N bars.")
    tempo: float | None = opt(None, "Play back at this tempo (quarter notes per minute).")
    program: int | None = opt(None, "Play every note with this General MIDI program (0-127).")
    instruments: tuple[int, ...] | None = opt(
        None,
        "The line-up, e.g. 0,33,25,drums (General MIDI programs and 'drums') [default: the model chooses, as the corpus does].",
        parse=lambda text: parse_instruments(text),
        show=lambda programs: ",".join(map(instrument_name, programs)),
    )
    # Repetition-aware sampling (musicgen/generate/repetition.py): logit bonus for the token that followed
    # the last `repeat_context` tokens, at the same place in the bar, earlier in the piece.
    repeat_bias: float = opt(
        0.0,
        "Repetition-aware sampling: a logit bonus for the token that followed the same few tokens, at the same place in the bar, earlier in the piece (0 = off).",
    )
    repeat_context: int = opt(8, "Tokens of context that must match for --repeat-bias.", cli=False)
    # Form-aware sampling (musicgen/generate/form.py): at each bar line a bar comes back, or not,
    # as the corpus's bars do; in one that does, a logit bonus for the token the bar it repeats
    # had next at the same place. None: FORM_BIAS for a model that learnt its corpus's form.
    form_bias: float | None = opt(
        None,
        f"Form-aware sampling: bars come back as the corpus's bars do; the logit bonus towards the bar repeated (default {FORM_BIAS:g} for a model that learnt its corpus's form, else off; 0 = off).",
    )
    # The loop guard (musicgen/generate/repetition.py): no pattern of up to
    # REPEAT_MAX_PERIOD pitches repeats for longer than this many notes. None: as long as
    # the model's training pieces loop (`train` measures it), or off for a model that did not.
    loop_limit: int | None = opt(
        None,
        "The longest stretch, in notes, over which one pattern of up to 8 pitches may repeat [default: as long as the loops of 9 in 10 of the corpus's pieces, for a model that measured them; 0 = off].",
    )
    # The silence guard (musicgen/generate/length.py): time runs on with nothing sounding, the
    # opening included, no longer than this. None: as long as the training pieces' silences
    # (`train` measures them), or off for a model that did not.
    silence_limit: float | None = opt(
        None,
        "The longest silence, opening included, in quarter notes (seconds for a model on the seconds clock) [default: as long as the longest silence of 9 in 10 of the corpus's pieces, for a model that measured them; 0 = off].",
    )
    # The entry guard (musicgen/generate/length.py): a drawn line-up's instruments come in,
    # and come back after a rest, when they did in the piece it was drawn from (`train`
    # measures when, and how long they rested), or earlier.
    entry_guard: bool = opt(
        True,
        "Each instrument of a line-up that --prior corpus drew comes in, and comes back after a rest, no later than it did in the training piece the line-up was drawn from (for a model that measured it); --no-entry-guard lets the model bring them in and rest them as it will.",
    )
    # The texture --prior corpus draws (musicgen/generate/controls.py): the density and
    # polyphony levels, bar by bar, of the training piece the line-up comes from.
    drawn_texture: bool = opt(
        True,
        "With --prior corpus, a new piece takes the density and polyphony, bar by bar, of the training piece its drawn line-up comes from, as hints (not guided), for the ones not asked (for a model that measured them; none with --instruments); --no-drawn-texture leaves them to the model.",
    )
    # Controls (tokens/controls.py): levels 1 (lowest) .. 5 for every bar, or bar by bar
    # from the first new bar (the last one held), and the piece's key. None: not asked.
    density: tuple[int, ...] | None = opt(
        None,
        "Notes per bar, 1 (sparsest) to 5 (densest) as the corpus's bars go: one level, or one per bar (1,1,2,3,4,4).",
        parse=lambda text: parse_levels(text, "density"),
        show=show_levels,
    )
    polyphony: tuple[int, ...] | None = opt(
        None,
        "Notes sounding at once, 1 to 5 as the corpus's bars go: one level, or one per bar.",
        parse=lambda text: parse_levels(text, "polyphony"),
        show=show_levels,
    )
    register: tuple[int, ...] | None = opt(
        None,
        "How high, 1 (lowest) to 5 as the corpus's bars go: one level, or one per bar.",
        parse=lambda text: parse_levels(text, "register"),
        show=show_levels,
    )
    dynamics: tuple[int, ...] | None = opt(
        None,
        "How loud, 1 (softest) to 5 as the corpus's bars go: one level, or one per bar.",
        parse=lambda text: parse_levels(text, "dynamics"),
        show=show_levels,
    )
    key: str | None = opt(
        None,
        "The piece's key, e.g. 'D minor', 'F#', 'Bb major'.",
        parse=lambda text: key_name(parse_key(text)),
    )
    key_pull: float = opt(
        KEY_PULL,
        "How strongly --key pulls each pitch towards the key: the log of the pitch class's Krumhansl-Kessler rating in the key, times this, added to its logit (0 = the learnt Key token alone). "
        f"A key drawn by --prior corpus pulls at most {DRAWN_KEY_PULL:g}.",
    )
    key_move: bool = opt(
        True,
        "Move a new piece (no --primer) that comes out in the mode of its key (--key, or the one --prior corpus drew) but on another tonic into that key, the nearer way (6 semitones at most, unless a note would leave MIDI's range; drums stay), unless --register is asked; --no-key-move keeps the key the model landed in.",
    )
    # Classifier-free guidance on the controls (generate/decoder.py GuidedDecoder): each song
    # is also read without its control tokens, and every draw pushed away from that reading.
    # None: GUIDANCE, but for live play (see GUIDANCE).
    guidance: float | None = opt(
        None,
        f"Classifier-free guidance on the controls asked for: the logits with them plus this times their difference from the logits without them; each step then costs two [default: {GUIDANCE:g}; for play 0, where answers must keep ahead of the clock; 0 = off].",
    )
    prior: str = opt(
        "corpus",
        "What a new piece (no --primer) takes from the corpus: corpus (the line-up and the key of a training piece, drawn for each song, unless --instruments or --key say otherwise; the key is asked for through the controls) or model (the model chooses them).",
    )
    use_cache: bool = opt(
        True,
        "Carry the model's state from step to step; --no-cache recomputes the whole context every step (for benchmarks and checks).",
        flag="cache",
    )

    def asked(self) -> list[str]:
        """The controls asked for, of CONTROLS, in its order."""
        return [name for name in CONTROLS if getattr(self, name) is not None]

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0 (0 means greedy), got {self.temperature}")
        if not self.top_k >= 0:
            raise ValueError(f"top_k must be >= 0 (0 means off), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1] (1 means off), got {self.top_p}")
        if self.unit not in LENGTH_UNITS:
            raise ValueError(f"length unit must be one of {', '.join(LENGTH_UNITS)}")
        if not self.length > 0:
            raise ValueError("length must be positive")
        if self.num_samples < 1:
            raise ValueError("num_samples must be at least 1")
        if self.tempo is not None and not 1 <= self.tempo <= 1000:
            raise ValueError("tempo must be between 1 and 1000 quarter notes per minute")
        if self.program is not None and not 0 <= self.program <= 127:
            raise ValueError("program must be a General MIDI program 0..127")
        if self.primer_bars is not None and self.primer_bars < 1:
            raise ValueError("primer_bars must be at least 1")
        if not self.repeat_bias >= 0 or self.repeat_context < 1:
            raise ValueError("repeat_bias must be >= 0 and repeat_context at least 1")
        if self.form_bias is not None and not self.form_bias >= 0:
            raise ValueError("form_bias must be >= 0")
        if self.loop_limit is not None and self.loop_limit < 0:
            raise ValueError(f"loop_limit must be >= 0 (0 means off), got {self.loop_limit}")
        if self.silence_limit is not None and not 0 <= self.silence_limit < float("inf"):
            raise ValueError(
                f"silence_limit must be a finite number >= 0 (0 means off), got {self.silence_limit}"
            )
        if not self.key_pull >= 0:
            raise ValueError(f"key_pull must be >= 0, got {self.key_pull}")
        if self.guidance is not None and not 0 <= self.guidance <= MAX_GUIDANCE:
            raise ValueError(
                f"guidance must be between 0 (off) and {MAX_GUIDANCE:g}, got {self.guidance}"
            )
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {self.prior!r}")
        for name in BAR_CONTROLS:
            levels = getattr(self, name)
            if levels is not None:
                object.__setattr__(self, name, tuple(int(v) for v in levels))
                parse_levels(show_levels(getattr(self, name)), name)  # 1..LEVELS, at least one
        if self.key is not None:
            object.__setattr__(self, "key", key_name(parse_key(self.key)))
        if self.instruments is not None:
            object.__setattr__(
                self, "instruments", tuple(sorted(set(int(p) for p in self.instruments)))
            )
            if not self.instruments or not all(0 <= p <= 128 for p in self.instruments):
                raise ValueError("instruments must be General MIDI programs 0..127 or 128 (drums)")


@dataclass(frozen=True)
class InfillConfig:
    """The passage `musicgen infill` writes again; saved in every sidecar."""

    file: str
    unit: str = "bars"  # "bars": bars start..end, counted from 1; "seconds": [start, end)
    start: float = 1.0
    end: float = 1.0
    candidates: int = opt(
        8,
        "Middles drawn for each version, of which one is kept: drawn by how likely the model finds the music after the span once that middle has been played (1 = the first drawn).",
    )

    def __post_init__(self) -> None:
        if self.unit not in ("bars", "seconds"):
            raise ValueError("an infill span is in bars or seconds")
        if not 1 <= self.candidates <= 64:
            raise ValueError("candidates must be between 1 and 64")

    def args(self) -> list[str]:
        """The options of `musicgen infill` that name this task."""
        span = (
            ["--bars", f"{int(self.start)}-{int(self.end)}"]
            if self.unit == "bars"
            else ["--seconds", f"{self.start:g}-{self.end:g}"]
        )
        return [*span, "--candidates", str(self.candidates)]


@dataclass(frozen=True)
class AccompanyConfig:
    """The part `musicgen accompany` keeps; saved in every sidecar."""

    file: str
    keep: str = "top"  # "top", an instrument's place in the line-up, a program, or a name

    def args(self) -> list[str]:
        """The options of `musicgen accompany` that name this task."""
        return ["--keep", self.keep]
