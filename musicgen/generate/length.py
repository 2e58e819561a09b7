"""Length targets for new music, the pulls of repetition- and form-aware sampling, and
the loop and silence guards.

Targets (`bars`, `seconds`, `notes`, `tokens`) count the newly generated music, not
the primer. End-of-piece is banned until the target is reached, and a note still
sounding at the target is cut there (`end_step`), so every piece ends cleanly at the
length asked for.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from musicgen.analysis.features import REPEAT_MAX_PERIOD, Silence
from musicgen.analysis.form import FormPrior
from musicgen.config import GenerateConfig
from musicgen.errors import MusicgenError
from musicgen.generate.controls import ControlPlan
from musicgen.generate.form import BarCopier
from musicgen.generate.repetition import LoopGuard, RepeatMemory
from musicgen.generate.rules import RowRules, follow

# time targets stop through the tracker; this only guards against a runaway model
MAX_TIMED_TOKENS = 200_000
# what the loop and silence guards take off a refused token's logit: a ban in effect, also
# after guidance has multiplied the model's margins (by 1 + GUIDANCE), but finite, so a row
# whose every allowed token were refused would still draw one
LOOP_PENALTY = 1000.0


@dataclass(frozen=True)
class Cue:
    """One instrument of a drawn band, for the entry guard: the step by which it must come
    in (from the start of new music), and the longest it may then rest, in steps (None:
    as long as it will)."""

    by: int
    rest: int | None = None


class LengthTracker(RowRules):
    """Each row's grammar, with EOS held back until its length target is reached; how much
    new music each row holds; the pulls towards what came before (see module), the loop
    guard's push away from playing one figure on and on, and the silence guard's away from
    letting time run on with nothing sounding for longer than the corpus does (a model
    learnt on music whose opening bars hold notes can still wait bar after bar for a first
    one: shift by shift, each step looks like any rest), and the entry guard's: each
    instrument of a drawn line-up comes in no later than it did in the piece the line-up
    was drawn from, and never rests longer than it did anywhere there (a model fine-tuned
    for minutes on a band plays the drums and one or two of the rest, each step looking
    like any step with those instruments)."""

    def __init__(
        self,
        vocab,
        cfg: GenerateConfig,
        prompt: np.ndarray,
        batch: int,
        *,
        header_fixed: bool = False,
        form: FormPrior | None = None,
        plan: ControlPlan | list[ControlPlan] | None = None,
        first_bar: int | None = None,
        cues: list[dict[int, Cue] | None] | None = None,
    ):
        streams = follow(vocab, vocab.to_universal(prompt), batch, end_header=header_fixed)
        super().__init__(vocab, streams, plan, first_bar)
        self.cfg = cfg
        first = self.streams[0]
        self.start_step, self.start_seconds, self.start_notes = (
            first.step,
            first.seconds,
            first.notes,
        )
        self.bar_len = np.full(batch, first.bar_steps, dtype=np.int64)
        self.tokens = np.zeros(batch, dtype=np.int64)
        # where a time target cut the piece (absolute steps); -1: it did not
        self.end_step = np.full(batch, -1, dtype=np.int64)
        self.memories: list[RepeatMemory] = []
        self.copiers: list[BarCopier] = []
        if cfg.form_bias and form is None:
            raise MusicgenError(
                "--form-bias needs the form the model learnt from its corpus, and this "
                "checkpoint has none (it was trained before musicgen learnt form): train again"
            )
        if cfg.repeat_bias or cfg.form_bias:
            self._read_prompt(prompt, form, batch)
        self.guards: list[LoopGuard] = []
        if cfg.loop_limit:
            guard = LoopGuard(cfg.loop_limit, REPEAT_MAX_PERIOD)
            prompt = np.asarray(prompt)
            for t in prompt[vocab.is_pitch(prompt)].tolist():
                guard.push(t)
            self.guards = [copy.deepcopy(guard) for _ in range(batch)]
        # the shifts, which the silence and entry guards refuse by size
        self.shift_ids = np.flatnonzero(vocab.families == "shift")
        self.shift_sizes = vocab.shift_steps[self.shift_ids]
        self.shortest_shift = int(self.shift_sizes.min())
        self.silences: list[Silence] = []
        if cfg.silence_limit:
            self._read_silence(prompt, batch)
        # per row, {program: the step its next note must start by} of the guarded instruments
        self.waiting: list[dict[int, int]] = []
        if cues is not None and any(cues):
            self._read_cues(cues)
        self.pulling = bool(
            self.memories or self.copiers or self.guards or self.silences or self.waiting
        )

    def _read_cues(self, cues: list[dict[int, Cue] | None]) -> None:
        """Each row's instruments still to come in and by which step (a cue counts from the
        start of new music), and the longest each may rest once in."""
        vocab = self.vocab
        self.waiting = [{p: self.start_step + c.by for p, c in (row or {}).items()} for row in cues]
        self.rests = [
            {p: c.rest for p, c in (row or {}).items() if c.rest is not None} for row in cues
        ]
        # per row, {program: the step its notes sound until} of the instruments in
        self.sounding: list[dict[int, int]] = [{} for _ in cues]
        values = vocab.space.value[vocab.uids]
        self.prog_ids = np.flatnonzero(vocab.families == "prog")
        self.prog_values = values[self.prog_ids]
        # what plays the current instrument without naming it
        self.playing_ids = np.flatnonzero(np.isin(vocab.families, ("vel", "pitch", "drum")))
        self.no_ids = np.zeros(0, dtype=np.int64)

    def _read_silence(self, prompt: np.ndarray, batch: int) -> None:
        """Each row's silence having read the prompt: from the start of new music, or from
        where the primer's last note stops sounding."""
        vocab = self.vocab
        silence = Silence(self.start_step)
        for note in vocab.stream().feed_all(vocab.to_universal(np.asarray(prompt))):
            silence.note(note.step, note.dur)
        self.silences = [copy.deepcopy(silence) for _ in range(batch)]
        # at least a step, as `train` measures it: a limit is never read as none
        self.silence_steps = max(1, int(round(self.cfg.silence_limit * vocab.cfg.steps_per_unit)))

    def _read_prompt(self, prompt: np.ndarray, form: FormPrior | None, batch: int) -> None:
        """The memories of repetition- and form-aware sampling, having read the prompt with
        its bar positions; each row then draws its own form from here."""
        vocab, cfg = self.vocab, self.cfg
        memory = RepeatMemory(cfg.repeat_context, cfg.repeat_bias)
        music = np.isin(vocab.families, ("shift", "prog", "vel", "pitch", "dur", "drum"))
        settings = np.isin(vocab.families, ("prog", "vel"))
        copier = BarCopier(form, cfg.form_bias, music, settings) if cfg.form_bias else None
        replay = vocab.stream()
        for t in np.asarray(prompt).tolist():
            if vocab.control_mask[t]:  # what the piece was asked to be is not its music
                replay.feed(vocab.uids[t])
                continue
            position = replay.bar_position
            replay.feed(vocab.uids[t])
            memory.push(t, replay.bar_position)
            if copier is not None:
                copier.push(t, position, replay)
        if cfg.repeat_bias:
            self.memories = [copy.deepcopy(memory) for _ in range(batch)]
        if copier is not None:
            self.copiers = [copy.deepcopy(copier) for _ in range(batch)]
            for b, c in enumerate(self.copiers):
                c.start(np.random.default_rng([cfg.seed, b]))

    @property
    def notes(self) -> np.ndarray:
        return np.array([s.notes - self.start_notes for s in self.streams], dtype=np.int64)

    def allowed(self, b: int) -> np.ndarray:
        row = self.vocab.allowed(self.streams[b]).copy()
        row[self.vocab.eos_id] = False  # the length target, not the model, ends the piece
        return row

    def pulls(self, b: int):
        """Towards what followed this context before (repetition), and towards the bar
        that comes back (form)."""
        if self.memories:
            token = self.memories[b].suggestion()
            if token is not None:
                yield token, self.memories[b].bias
        if self.copiers:
            allowed = self.vocab.allowed(self.streams[b])
            token = self.copiers[b].suggestion(lambda t: allowed[t])
            if token is not None:
                yield token, self.copiers[b].bias
        if self.guards:
            for token in self.guards[b].refused():
                yield token, -LOOP_PENALTY
        # a shift either guard refuses loses the penalty once (not once per guard)
        refused = None
        if self.silences:
            room = self.silence_steps - self.silences[b].at(self.streams[b].step)
            refused = self.shift_sizes > room
        if self.waiting and self.waiting[b]:
            shifts, others = self._entry(b)
            refused = shifts if refused is None else refused | shifts
            if len(others):
                yield others, -LOOP_PENALTY
        if refused is not None and refused.any():
            yield self.shift_ids[refused], -LOOP_PENALTY

    def _entry(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """The entry guard's refusals for row `b`: (bool over the shifts, other ids). Time
        may not pass the first step an instrument's next note must start by (its entry, or
        the end of its rest). An instrument is due when no shift fits before that step; the
        notes of a step go by instrument upwards, so until the lowest instrument due has
        played, nothing above it may (what is below it, a chord's other notes or an
        instrument not due, still may); if this step has already gone past it, only the
        shortest shift may be drawn, so that it plays at the next step."""
        stream, waiting = self.streams[b], self.waiting[b]
        shortest = self.shortest_shift
        due = sorted(p for p, step in waiting.items() if step - stream.step < shortest)
        if not due:
            return self.shift_sizes > min(waiting.values()) - stream.step, self.no_ids
        first = due[0]
        if stream.prog_here >= first:  # an instrument at or above it played here
            return self.shift_sizes > shortest, self.no_ids
        others = [self.prog_ids[self.prog_values > first]]
        if stream.program is None or stream.program > first:
            others.append(self.playing_ids)
        return np.ones_like(self.shift_sizes, bool), np.concatenate(others)

    def _cue(self, b: int, note) -> None:
        """Row `b`'s instrument has played `note`: by when it must play again, if it may
        rest only so long."""
        p = note.program
        rest = self.rests[b].get(p)
        if rest is None:
            self.waiting[b].pop(p, None)
            return
        until = max(self.sounding[b].get(p, 0), note.step + note.dur)
        self.sounding[b][p] = until
        # never due again at the step it played: a rest shorter than any shift would hold
        # time there, this instrument forced on at every step and those above it shut out
        self.waiting[b][p] = max(until + rest, note.step + self.shortest_shift)

    def take(self, b: int, t: int) -> bool:
        cfg, stream = self.cfg, self.streams[b]
        step0, sec0 = stream.step, stream.seconds
        sec_per_step = seconds_per_step(stream)
        position = stream.bar_position
        note = stream.feed(self.vocab.uids[t])
        if self.silences and note is not None:
            self.silences[b].note(note.step, note.dur)
        if self.waiting and note is not None:
            self._cue(b, note)
        if self.memories:
            self.memories[b].push(t, stream.bar_position)
        if self.copiers:
            self.copiers[b].push(t, position, stream)
        if self.guards and self.vocab.is_pitch(t):
            self.guards[b].push(t)
        self.tokens[b] += 1
        if (
            stream.step == self.start_step
            and stream.time_signatures
            and stream.time_signatures[-1][0] == stream.step
        ):
            self.bar_len[b] = stream.bar_steps  # a metre chosen before any time passes
        new_steps = stream.step - self.start_step
        if cfg.unit == "tokens":
            return bool(self.tokens[b] >= cfg.length)
        if cfg.unit == "notes":
            return bool(stream.notes - self.start_notes >= cfg.length)
        if cfg.unit == "bars":
            target = int(round(cfg.length * self.bar_len[b]))
            if new_steps >= target:
                self.end_step[b] = min(stream.step, self.start_step + target)
                return True
            return False
        if stream.seconds - self.start_seconds >= cfg.length:
            # whole steps that still fit: the piece ends at or before the target, never after
            room = max(cfg.length - (sec0 - self.start_seconds), 0.0)
            self.end_step[b] = step0 + min(
                stream.step - step0, int(np.floor(room / sec_per_step + 1e-9))
            )
            return True
        return False

    def max_tokens(self) -> int:
        cfg = self.cfg
        if cfg.unit == "tokens":
            return int(cfg.length)
        if cfg.unit == "notes":
            return int(cfg.length) * 8 + 64
        return MAX_TIMED_TOKENS


def seconds_per_step(stream) -> float:
    return (
        60.0 / (stream.qpm * stream.steps_per_unit) if stream.beats else 1.0 / stream.steps_per_unit
    )
