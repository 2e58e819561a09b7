"""Live accompaniment: the model plays the other parts under the player, beat by beat.

The player's next notes cannot be known, so the model cannot hear them before it plays
with them; it hears every beat that has passed, exactly, and plays the next one. Just
before each beat line k (on the player's followed tempo) the accompanist:

1. writes the session so far, the player's notes and its own, up to beat k as one piece
   in the model's tokens (the player's held notes as long as they have sounded);
2. goes back to the decoder's state at the latest beat line whose tokens are still the
   session's (`Decoder.restore`) and reads the tokens since then, which now hold what the
   player really played beside what it played itself (its own guess at that beat,
   decoded without them, is dropped). A note the player held across beat lines is
   written again with its longer duration at its onset, so the state a few beat lines
   back is kept too: reading the session from the top took the gru-attn 0.12 s at 8 bars
   and 0.44 s at 32, past the beat;
3. draws its part of beat k to k + 1 (`BeatRules`): time first moves on to the beat line,
   then its notes, on its own instruments only, until the next beat line.

Writing the session out takes longer as it goes on (29 ms a beat at 128 bars, past the
80 ms a beat is decided ahead at about 400), so it is written from a bar line on (`cut`):
once what it reads from there passes `READ_AGAIN` model windows, the cut moves on to the
latest bar line from which it fits in one, and the decoder reads that from the top, bar by
bar, right after a beat is decided (`_move_cut`; the GRU's state, which could carry
further, starts again there too).

Its instruments: `--instruments` (the line-up it plays, beside the player's), or else
the player's own instrument, under the lowest note the player has sounding or last played.

Controls asked for (`--key`, `--density` and the rest) are written into the session's
tokens where each bar begins, as `generate` writes them, and guided on only if
`--guidance` is given (a guided beat costs two readings, and the beat line does not wait).
"""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np
import torch

from musicgen.checkpoint import LoadedModel
from musicgen.config import GenerateConfig, LiveConfig
from musicgen.data.controls import bar_entries
from musicgen.generate.controls import ControlPlan
from musicgen.generate.decoder import Sampling, evaluating, make_decoder, step
from musicgen.generate.primer import model_tokens, with_instruments
from musicgen.generate.rules import RowRules
from musicgen.live.messages import note
from musicgen.live.performer import EARLY, Performer, fit, from_bar, made_up_bar
from musicgen.midi.score import NOTE_DTYPE, Score
from musicgen.tokens.decoding import quarters_per_step
from musicgen.tokens.space import DRUMS
from musicgen.tokens.stream import FREE

LEAD = 0.08  # seconds before a beat line that its part is decided, at the least
# A beat can take a model longer than LEAD to decide (the transformer in `benchmarks/live.py
# --mode accompany`: messages up to 185 ms late, 1 in 10 by more than 5 ms), so the lead
# grows to this many times the slowest of the last few beats' decisions, up to half a beat.
LEAD_MARGIN = 1.5


def lead_for(took, beat_seconds: float) -> float:
    """Seconds before a beat line to decide that beat, given the seconds the last beats
    took to decide."""
    return min(max(LEAD, LEAD_MARGIN * max(took, default=0.0)), max(0.5 * beat_seconds, LEAD))


READ_AGAIN = 2  # model windows of session read from the cut before the cut moves on
MOVE_MARGIN = 1.5  # times its last move's time the cut needs before the next decision
KEPT = 16  # decoder states kept, one per beat line, to go back to (a held note rewrites its beat)


class BeatRules(RowRules):
    """One row: first time moves on to the beat line, then the model's notes until the
    next one; never a note of the player's instrument (or, sharing it, none above
    `ceiling`), never the end of the piece."""

    def __init__(
        self,
        vocab,
        stream,
        start: int,
        end: int,
        theirs: int,
        ceiling: int | None,
        plan: ControlPlan | None = None,
        first_bar: int = 0,
    ):
        super().__init__(vocab, [stream], plan, first_bar=first_bar)
        self.start, self.end, self.theirs, self.ceiling = start, end, theirs, ceiling
        fam = vocab.families
        self.shift = fam == "shift"
        self.note = np.isin(fam, ("vel", "pitch", "dur", "drum"))
        self.prog = np.where(fam == "prog", vocab.space.value[vocab.uids], -1)
        pitch = np.where(fam == "pitch", vocab.space.value[vocab.uids], -1)
        self.high = pitch > (ceiling if ceiling is not None else 128)
        self.min_shift = float(vocab.shift_steps.min())
        self.played: list = []

    def allowed(self, b: int) -> np.ndarray:
        stream = self.streams[b]
        row = self.vocab.allowed_within(stream, self.end - stream.step)
        row[self.vocab.eos_id] = False
        if stream.after == FREE and stream.step < self.start:  # the beat's line first:
            # a Shift that reaches it, or the longest (the grammar lets only that go on)
            steps = self.vocab.shift_steps
            reach = (stream.step + steps >= self.start) | (steps == steps[self.shift].max())
            return row & self.shift & reach
        mine = row & ~self.high
        if stream.after == FREE and self.ceiling is None:  # its own instruments only
            mine &= self.prog != self.theirs
            if stream.program == self.theirs:
                mine &= ~self.note
        # a note begun under a ceiling it cannot keep: time moves on instead, or the
        # note goes as the grammar has it rather than nowhere
        for fallback in (mine, row & self.shift, row):
            if fallback.any():
                return fallback
        return row

    def take(self, b: int, token: int) -> bool:
        stream = self.streams[b]
        note = stream.feed(self.vocab.uids[token])
        if note is not None:
            self.played.append(note)
        return stream.after == FREE and self.end - stream.step < self.min_shift


class Reading:
    """The decoder that has read the session, and its states at the last `KEPT` beat
    lines: each beat it goes back to the latest state whose tokens the session still
    begins with, and reads on from there (from the top only when none is)."""

    def __init__(self, new_decoder):
        self.new_decoder = new_decoder
        self.decoder = None
        self.committed: list[int] = []
        self.kept: list[tuple[int, object]] = []  # (tokens read, snapshot), oldest first
        self.from_top = 0  # how often it read the session from the top

    def read(self, tokens: list[int]):
        same = common_prefix(tokens, self.committed)
        kept = [(n, snap) for n, snap in self.kept if n <= same]
        if self.decoder is None or not kept:
            self.decoder = self.new_decoder(tokens)
            self.from_top += 1
        else:
            n, snap = kept[-1]
            self.decoder.restore(snap)
            if len(tokens) > n:
                self.decoder.push(torch.tensor([tokens[n:]]))
        self.decoder.logits()  # read now: a snapshot keeps what is read, not what is pending
        self.kept = [*kept, (len(tokens), self.decoder.snapshot())][-KEPT:]
        self.committed = tokens
        return self.decoder


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many tokens `a` and `b` begin with alike."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(differ[0]) if len(differ) else n


class Accompanist(Performer):
    """Plays along: `start()` it, and it follows the listener (shared under `lock`) from
    the player's first note until `stop()`."""

    def __init__(
        self,
        model: LoadedModel,
        cfg: GenerateConfig,
        live: LiveConfig,
        scheduler,
        clock,
        listener,
        lock,
    ):
        super().__init__(model, cfg, live, scheduler, clock)
        self.listener, self.lock = listener, lock
        self.mine = np.zeros(0, dtype=NOTE_DTYPE)  # what it played, in the player's quarters
        self.plan = ControlPlan.of(cfg, model.vocab)  # a model without controls: one line here
        self.reading = Reading(self._decoder)  # the session as the decoder has read it
        self.cut = 0.0  # the bar line (quarters) the session is written from
        self.move_took = 0.0  # seconds the cut's last move took
        # the model's steps in a quarter of the session (which is written at 120 qpm, so on
        # the seconds clock a quarter is SECONDS_QPM's)
        self.per_quarter = round(1 / quarters_per_step(model.vocab.cfg))
        self._stop = False
        self._thread = threading.Thread(target=self._follow, name="accompanist", daemon=True)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop = True
        self.wake.set()
        self._thread.join(timeout)

    def _follow(self) -> None:
        try:
            with evaluating(self.model.core), torch.no_grad():
                self._warm_up()
                self._play_along()
        except BaseException as exc:  # noqa: BLE001 - reported by the session, in one line
            self.error = exc

    def _warm_up(self) -> None:
        """The first beat allocates, picks kernels and fills the caches of the grammar and
        the tokenizer (in `benchmarks/live.py --mode accompany` the gru's first messages
        came 109 ms late, every later beat on time): one beat is decided on a made-up bar
        and dropped before the player's first note, the random draws left as they were."""
        draws = self._generator.get_state()
        self._beat(made_up_bar(), 4)
        self._generator.set_state(draws)
        self.reading = Reading(self._decoder)

    def _play_along(self) -> None:
        tempo = self.listener.tempo
        while tempo.origin is None and not self._stop:  # until the player's first note
            self.clock.sleep_until(math.inf, self.wake)
            self.wake.clear()
        beat = 1
        took: deque[float] = deque(maxlen=8)  # seconds the last beats took to decide
        while not self._stop:
            self.wake.clear()  # a note played wakes it only to look at the time again
            line = tempo.seconds_at(beat)
            lead = lead_for(took, tempo.seconds_at(beat + 1) - line)
            self.clock.sleep_until(line - lead, self.wake)
            if self._stop:
                return
            if self.clock.now() < tempo.seconds_at(beat) - lead:
                continue  # woken early: a tempo change moved the line
            began = self.clock.now()
            with self.lock:
                theirs = self.listener.score(tempo.seconds_at(beat))
            self._decide(theirs, beat, tempo)
            took.append(self.clock.now() - began)
            self.takes += 1  # a beat decided
            # the next beat is decided at its line less its lead: the cut moves only if it
            # can be done by then, with room to spare (else at a later beat)
            next_line = tempo.seconds_at(beat + 1)
            spare = next_line - lead_for(took, tempo.seconds_at(beat + 2) - next_line)
            if self.clock.now() + MOVE_MARGIN * self.move_took < spare:
                began = self.clock.now()
                if self._move_cut(theirs, beat):
                    self.move_took = self.clock.now() - began
            beat += 1

    def _decide(self, theirs: Score, beat: int, tempo) -> None:
        """Draw its part of beat `beat` and send it (timed by `tempo`)."""
        self._play(self._beat(theirs, beat), tempo)

    def _beat(self, theirs: Score, beat: int) -> list:
        """Its part from beat line `beat` to the next, having heard the session up to it:
        the notes, their steps counted from the cut."""
        vocab, per_quarter = self.model.vocab, self.per_quarter
        tokens, program, ceiling = self._tokens(theirs, beat)
        decoder = self.reading.read(tokens)
        stream = vocab.stream()
        stream.feed_all(vocab.uids[tokens])
        stream.end_header()
        first = round((beat - self.cut) * per_quarter)  # the beat line, in the cut's steps
        rules = BeatRules(
            vocab,
            stream,
            first,
            first + per_quarter,
            program,
            ceiling,
            self.plan,
            first_bar=-self._bars_cut(),
        )
        sampling = Sampling(self.cfg.temperature, self.cfg.top_k, self.cfg.top_p)
        for _ in range(4 * per_quarter):  # a guard; a beat holds far fewer tokens
            token = step(decoder, sampling, self._generator, rules)
            if rules.update(token)[0]:
                break
        return rules.played

    def _move_cut(self, theirs: Score, beat: int) -> bool:
        """After beat `beat` is decided, in the time before the next: once the session read
        from the cut passes READ_AGAIN model windows (its notes' tokens, as `fit` counts
        them), move the cut on to the latest bar line from which it fits in one, and read
        the session from there a bar at a time, so the next beat reads on from a kept state
        (a note held across the beat line rewrites only its own bar). Done during the beat
        it was, the reading from the top made that beat late (up to 461 ms for the gru).
        Whether it moved."""
        window = self.model.model_cfg.max_len if self.model.model_cfg else None
        vocab = self.model.vocab
        read = self.reading.committed  # the session up to `beat`, as the beat just read it
        if not window or len(read) - vocab.control_mask[read].sum() <= READ_AGAIN * window:
            return False
        where = fit(self._session(theirs, beat), vocab, window)[0]
        if not where:  # the bar with the last onset alone is longer: nowhere to move to
            return False
        self.cut += where
        tokens, _, _ = self._tokens(theirs, beat)
        positions, _ = bar_entries(vocab.uids[tokens], vocab)
        for at in positions.tolist():
            if 0 < at < len(tokens):
                self.reading.read(tokens[:at])
        self.reading.read(tokens)
        return True

    def _decoder(self, tokens: list[int]):
        """A decoder that has read `tokens`: guided on the controls asked, if asked to."""
        guided = self.plan is not None and bool(self.cfg.guidance)
        return make_decoder(
            self.model.core,
            torch.tensor([tokens]),
            guidance=self.cfg.guidance if guided else 0.0,
            unguided=torch.from_numpy(self.plan.guided(self.model.vocab)) if guided else None,
        )

    def _session(self, theirs: Score, beat: int) -> Score:
        """The session from the cut up to beat line `beat`, the player's notes and its own,
        moved to start at the cut; in the player's quarters, as 4/4."""
        since = self.cut - EARLY  # from_bar keeps a downbeat played a hair early
        notes = np.concatenate([theirs.notes, self.mine])
        notes = notes[(notes["start"] < beat) & (notes["start"] >= since)]
        notes = notes[np.argsort(notes["start"], kind="stable")]
        piece = Score(notes=notes, tempos=[(0.0, 120.0)], time_signatures=[(0.0, 4, 4)])
        return from_bar(piece, self.cut) if self.cut else piece

    def _bars_cut(self) -> int:
        return round(self.cut / 4)  # the session is written as 4/4

    def _tokens(self, theirs: Score, beat: int) -> tuple[list[int], int, int | None]:
        """The session from the cut up to beat line `beat` in the model's compact ids (no
        EOS), the player's instrument, and the ceiling of the model's notes if it shares it."""
        vocab = self.model.vocab
        piece = self._session(theirs, beat)
        program = int(theirs.notes["program"][0]) if len(theirs.notes) else 0
        lineup = set(self.cfg.instruments or ()) | {program}
        ceiling = None
        if lineup == {program}:  # sharing the player's instrument: stay under them
            recent = theirs.notes[theirs.notes["start"] >= beat - 2]
            ceiling = int(recent["pitch"].min()) - 1 if len(recent) else 60
        _, uids, _, _ = model_tokens(piece, vocab)
        uids = with_instruments(uids[:-1], vocab, tuple(sorted(lineup)))
        tokens = vocab.lookup[uids].tolist()
        # each bar's controls where it begins, as generate has them: in a bar nobody plays
        # too (training leaves them out there; generate forces them in every bar)
        if self.plan is not None:
            positions, bars = bar_entries(uids, vocab)
            bars = bars + self._bars_cut()  # the plan counts bars from the session's first
            for at, bar in reversed(list(zip(positions.tolist(), bars.tolist(), strict=True))):
                tokens[at:at] = [t for _, t in self.plan.tokens(vocab, bar)]
        return tokens, program, ceiling

    def _play(self, notes: list, tempo) -> None:
        """Send `notes` (their steps counted from the cut, where they were drawn)."""
        if not notes:
            return
        rows = np.zeros(len(notes), dtype=NOTE_DTYPE)
        items = []
        for i, n in enumerate(notes):
            start = self.cut + n.step / self.per_quarter
            dur = n.dur / self.per_quarter
            rows[i] = (
                start,
                dur,
                n.pitch,
                n.velocity,
                0 if n.program == DRUMS else n.program,
                n.program == DRUMS,
            )
            t, end = tempo.seconds_at(start), tempo.seconds_at(start + dur)
            channel = self._channel(n.program, t, items)
            items += note(t, end, n.pitch, n.velocity, channel)
        self.mine = np.concatenate([self.mine, rows])
        self.scheduler.submit(items)
