"""The model's side of live play: it decodes ahead of the clock in a thread of its own and
hands timed notes to the scheduler, which alone touches the port.

A take is one answer (or one endless continuation): the player's phrase so far, read in
the model's tokens as a primer, continued through the same step-wise `Decoder` and
rules that `musicgen generate` drives. So that the answer does not wait on the model,
the performer starts thinking before the rest is certain: once the player has been
quiet for `lead` seconds it prepares the take (the phrase read, the first notes
decoded), and when the rest comes it only has to send them. If the player plays on
instead, the prepared take is thrown away.

Time: a take's first note sounds at the rest; the rest of the take keeps the model's
own rhythm on the player's tempo (the followed quarter note), so the answer is in the
player's pace. The key of the phrase just played (after the last rest), when the model
learnt controls, is asked for in every bar of the answer.
"""

from __future__ import annotations

import math
import queue
import threading
from dataclasses import dataclass, replace

import mido
import numpy as np
import torch

from musicgen.analysis.key import estimate_key
from musicgen.checkpoint import LoadedModel
from musicgen.config import GenerateConfig, LiveConfig
from musicgen.config.controls import key_name
from musicgen.generate.controls import ControlPlan
from musicgen.generate.decoder import Decoder, Sampling, evaluating, make_decoder, step
from musicgen.generate.length import LengthTracker
from musicgen.generate.primer import model_tokens
from musicgen.live.clock import Wake
from musicgen.live.listen import DRUM_CHANNEL
from musicgen.live.messages import Timed, note
from musicgen.midi.score import NOTE_DTYPE, Score
from musicgen.tokens.space import DRUMS

ENDLESS_BARS = 10_000
OPENING = 0.25  # seconds of the answer decoded before it starts  # a continuation plays until it is stopped or the player comes back


def last_phrase(score: Score, gap: float) -> Score:
    """The notes after the last silence of at least `gap` quarters (all of them if there
    is none): the phrase just played, whose key the answer takes. A player who moves to
    another key is answered in the new one, not in a blend of all they played."""
    notes = score.notes[np.argsort(score.notes["start"], kind="stable")]
    if len(notes) < 2:
        return score
    sounding_until = np.maximum.accumulate(notes["start"] + notes["duration"])
    silences = np.nonzero(notes["start"][1:] - sounding_until[:-1] >= gap)[0]
    first = int(silences[-1]) + 1 if len(silences) else 0
    return Score(notes=notes[first:], tempos=score.tempos, time_signatures=score.time_signatures)


def recent(phrase: Score, vocab, tokens: int) -> tuple[Score, np.ndarray]:
    """The phrase from the latest bar line after which it reads in at most `tokens` tokens
    (as a prompt: no EOS), moved to start there (its bars stay bars), all of it if it fits;
    and its universal ids (written out once, here, for the answer to read).
    An answer needs the music just played, and reading a whole session takes longer as the
    session goes on: on this CPU 5,000 tokens (5 minutes of chorales) took the gru-attn
    2.5 s, past the rest it had to answer at."""
    _, cut, uids = fit(phrase, vocab, tokens)
    return cut, uids


def fit(phrase: Score, vocab, tokens: int) -> tuple[float, Score, np.ndarray]:
    """(where, cut, ids): the latest bar line (quarters into `phrase`) after which it reads
    in at most `tokens` tokens, `phrase` from there moved to start at 0, and its universal
    ids. Only the last `tokens // 2` bars are even written out in tokens, so the cut costs
    no more in a long session than in a short one. The first guess keeps as many notes as
    the phrase's tokens per note say fit (so long rests, which the tokens shorten, and
    either clock count alike); a bar at a time goes while it does not fit, and the bar with
    the last onset stays whatever it holds."""
    lines = phrase.bar_lines()
    where = 0.0
    if len(lines) > tokens // 2:
        where = lines[-(tokens // 2)]
        phrase = from_bar(phrase, where)
        lines = phrase.bar_lines()
    _, uids, _, _ = model_tokens(phrase, vocab)
    if len(uids) - 1 <= tokens or len(phrase.notes) < 2:
        return where, phrase, uids
    starts = np.sort(phrase.notes["start"])
    keep = max(1, int(len(starts) * tokens / (len(uids) - 1)))
    last = int(np.searchsorted(lines, starts[-1] + EARLY, side="right")) - 1  # the last onset's bar
    k = min(int(np.searchsorted(lines, starts[-keep] + EARLY, side="right")) - 1, last)
    while True:
        cut = from_bar(phrase, lines[k])
        _, uids, _, _ = model_tokens(cut, vocab)
        if k >= last or len(uids) - 1 <= tokens:
            return where + lines[k], cut, uids
        k += 1


def made_up_bar() -> Score:
    """A bar of four notes to warm a model up on before the player's first."""
    notes = np.zeros(4, dtype=NOTE_DTYPE)
    notes["start"], notes["duration"] = [0, 1, 2, 3], 1.0
    notes["pitch"], notes["velocity"] = [60, 64, 67, 72], 80
    return Score(notes=notes, tempos=[(0.0, 120.0)], time_signatures=[(0.0, 4, 4)])


EARLY = 0.05  # quarters: a downbeat played this early is still the bar's


def from_bar(phrase: Score, cut: float) -> Score:
    """The notes from the bar line at `cut` quarters on (one played a hair early is the
    bar's), and the tempo map from there, moved to start at 0."""
    notes = phrase.notes[phrase.notes["start"] >= cut - EARLY].copy()
    notes["start"] = np.maximum(notes["start"] - cut, 0.0)
    sig = [s for s in sorted(phrase.time_signatures) if s[0] <= cut + 1e-9] or [(0.0, 4, 4)]
    later = [(t - cut, q) for t, q in sorted(phrase.tempos) if t > cut + 1e-9]
    return Score(
        notes=notes,
        tempos=[(0.0, phrase.qpm_at(cut)), *later],
        time_signatures=[(0.0, sig[-1][1], sig[-1][2])],
    )


@dataclass
class Take:
    """One answer being thought of: the decoder, its rules, and the notes drawn so far
    with their steps on the model's clock (not yet sent)."""

    decoder: Decoder
    rules: LengthTracker
    reader: object  # a Stream that reads the drawn tokens and gives back their notes
    seconds_per_step: float
    first_step: int | None = None
    start: float | None = None  # the clock second the first note sounds (set at the rest)
    epoch: int | None = None
    pending: list = None  # notes drawn, waiting for the rest to be sure
    done: bool = False


class Performer:
    """Decodes takes in its own thread; the app calls `prepare`, `go` and `give_way` from
    the thread that listens to the player."""

    def __init__(self, model: LoadedModel, cfg: GenerateConfig, live: LiveConfig, scheduler, clock):
        self.model, self.cfg, self.live = model, cfg, live
        self.scheduler, self.clock = scheduler, clock
        self.channel = live.channel - 1  # mido counts channels from 0
        self.commands: queue.Queue = queue.Queue()
        self.take: Take | None = None
        self.takes = 0
        self.first_notes: list[tuple[float, float]] = []  # (rest, first note's time) per take
        self.error: BaseException | None = None
        self.channels: dict[int, int] = {}  # the model's instruments: program -> channel
        self.wake = Wake()  # set by every cue, so a sleeping performer takes it at once
        self._thread = threading.Thread(target=self._run, name="performer", daemon=True)
        self._generator = torch.Generator().manual_seed(cfg.seed)

    # --- what the listening thread calls -----------------------------------------------
    def start(self) -> Performer:
        self._thread.start()
        return self

    def prepare(self, phrase: Score, qpm: float) -> None:
        """The player has paused: read their phrase and draw the answer's first notes."""
        self._cue(("prepare", phrase, qpm))

    def go(self, rest: float) -> None:
        """The rest is certain: the prepared take starts sounding at `rest`."""
        self._cue(("go", rest))

    def give_way(self) -> None:
        """The player came back in: drop the take (the app has cancelled what was queued)."""
        self._cue(("drop",))

    def stop(self, timeout: float = 5.0) -> None:
        self._cue(("stop",))
        self._thread.join(timeout)

    def _cue(self, cmd: tuple) -> None:
        self.commands.put(cmd)
        self.wake.set()

    # --- the performer's thread ---------------------------------------------------------
    def _run(self) -> None:
        """Take the cues, decode up to `ahead` seconds past the clock, then sleep on the
        clock until that horizon moves or a cue comes."""
        try:
            with evaluating(self.model.core), torch.no_grad():
                self._warm_up()
                while True:
                    self.wake.clear()  # a cue after this wakes the sleep below at once
                    while not self.commands.empty():
                        cmd = self.commands.get_nowait()
                        if cmd[0] == "stop":
                            return
                        self._command(cmd)
                    self._think()
                    self.clock.sleep_until(self._next_wake(), self.wake)
        except BaseException as exc:  # noqa: BLE001 - reported by the app, in one line
            self.error = exc

    def _next_wake(self) -> float:
        """When the horizon reaches the next token to draw (inf: nothing to draw)."""
        take = self.take
        if take is None or take.start is None or take.done:
            return math.inf
        return self._time(take, take.reader.step) - self.live.ahead

    def _warm_up(self) -> None:
        """A first take allocates, picks kernels and fills the grammar's caches: one is
        thought of and dropped while the player plays their first phrase, so the first
        answer is as quick as the others."""
        self.take = self._new_take(made_up_bar(), 120.0)
        for _ in range(32):
            if self.take.done:
                break
            self._draw()
        self.take = None

    def _command(self, cmd: tuple) -> None:
        if cmd[0] == "prepare":
            self.take = self._new_take(cmd[1], cmd[2])
            self._draw_first_note()
        elif cmd[0] == "go" and self.take is not None:
            take = self.take
            take.start, take.epoch = cmd[1], self.scheduler.epoch
            self._draw_first_note()  # already drawn, unless the rest came before the lead
            self.takes += 1
            self._send(take.pending)
            take.pending = []
        elif cmd[0] == "drop":
            self.take = None

    def _new_take(self, phrase: Score, qpm: float) -> Take:
        vocab = self.model.vocab
        window = self.model.model_cfg.max_len if self.model.model_cfg else None
        if window:
            _, uids = recent(phrase, vocab, window)
        else:
            _, uids, _, _ = model_tokens(phrase, vocab)
        prompt = vocab.lookup[uids[:-1]]  # the phrase goes on: no EOS
        cfg = self.cfg
        if vocab.has_controls and cfg.key is None:  # answer in the key the player is in now
            gap = self.live.rest_seconds() * qpm / 60.0  # a rest, in quarters
            key = estimate_key(last_phrase(phrase, 0.9 * gap))
            key = key if key is not None else estimate_key(phrase)
            cfg = replace(cfg, key=key_name(key)) if key is not None else cfg
        length = ENDLESS_BARS if self.live.mode == "continue" else self.live.bars
        cfg = replace(cfg, unit="bars", length=length, num_samples=1, form_bias=0.0)
        plan = ControlPlan.of(cfg, vocab)
        rules = LengthTracker(vocab, cfg, prompt, 1, header_fixed=True, plan=plan)
        decoder = make_decoder(
            self.model.core,
            torch.from_numpy(prompt[None]),
            # live: none unless asked (a guided step costs two; answers keep ahead of the clock)
            guidance=(cfg.guidance or 0.0) if plan is not None else 0.0,
            unguided=torch.from_numpy(rules.guided()) if plan is not None else None,
            context_len=window,
        )
        reader = vocab.stream()
        reader.feed_all(vocab.uids[prompt])
        reader.end_header()
        beats = vocab.cfg.time == "beats"
        per_step = 60.0 / (qpm * vocab.cfg.steps_per_quarter) if beats else 0.0
        per_step = per_step or 1.0 / vocab.cfg.steps_per_second
        return Take(decoder, rules, reader, per_step, pending=[])

    def _draw(self) -> list:
        """One token of the take; the notes it completes (with their steps)."""
        take = self.take
        s = Sampling(self.cfg.temperature, self.cfg.top_k, self.cfg.top_p)
        token = step(take.decoder, s, self._generator, take.rules)
        take.done = bool(take.rules.update(token)[0])
        played = take.reader.feed(self.model.vocab.uids[int(token[0])])
        return [played] if played is not None else []

    def _draw_first_note(self) -> None:
        """Draw the take's opening: its first note and everything in the `OPENING` seconds
        after it, so that what sounds at once at the rest is ready at the rest."""
        take = self.take
        while take is not None and not take.done:
            if take.first_step is not None:
                opening = take.first_step + OPENING / take.seconds_per_step
                if take.reader.step > opening:
                    break
            take.pending += self._draw()
            if take.pending and take.first_step is None:
                take.first_step = take.pending[0].step

    def _think(self) -> None:
        """Decode on while the take is not `ahead` seconds ahead of the clock."""
        take = self.take
        if take is None or take.start is None:
            return
        horizon = self.clock.now() + self.live.ahead
        while not take.done and self._time(take, take.reader.step) < horizon:
            if not self._send(self._draw()):
                self.take = None  # the scheduler refused: the player came back, or it stopped
                return

    def _time(self, take: Take, at_step: int) -> float:
        return take.start + (at_step - (take.first_step or 0)) * take.seconds_per_step

    def _channel(self, program: int, t: float, items: list) -> int:
        """The channel an instrument of the model plays on (drums on 10, the rest from
        `channel` up), set to its program the first time it plays."""
        if program == DRUMS:
            return DRUM_CHANNEL
        if program not in self.channels:
            free = [c for c in range(self.channel, 16) if c != DRUM_CHANNEL]
            self.channels[program] = free[len(self.channels) % len(free)]
            shown = program if self.cfg.program is None else self.cfg.program
            items.append(
                Timed(
                    t, mido.Message("program_change", channel=self.channels[program], program=shown)
                )
            )
        return self.channels[program]

    def _send(self, notes: list) -> bool:
        take, items = self.take, []
        for n in notes:
            t = self._time(take, n.step)
            channel = self._channel(n.program, t, items)
            end = t + n.dur * take.seconds_per_step
            items += note(t, end, n.pitch, n.velocity, channel)
            if len(self.first_notes) < self.takes:
                self.first_notes.append((take.start, t))
        return not items or self.scheduler.submit(items, epoch=take.epoch)
