"""The step-wise decoder: a batch of rows through a core, one token at a time.

Every task drives the same `Decoder`: `decode` runs it to the end for generate,
infill and accompany, and live play steps it a token at a time, feeds the
player's notes in, keeps a `snapshot` while it plays ahead of the clock, and
`restore`s it when the player comes back in and the speculative tokens are dropped.

With the cache the prompt runs once and each step feeds only the new tokens with the
carried state (GRU hidden state, attention memory, transformer key/value cache);
without it the whole sequence (its last `context_len` tokens) runs again every step.
A core's state is never changed in place (each step returns a new one), so a
snapshot is a reference, not a copy.

Decoding runs on `DECODE_THREADS` torch threads (`decoding_threads`), whatever the process
uses otherwise: a step is a handful of small matrix products, each split across threads
that must all meet at its end, so a second thread saves little on an idle machine and,
when another process holds a core, every product waits for the thread the scheduler
parked. `benchmarks/generate.py` measures it (docs/results.md, Speed).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from musicgen.errors import MusicgenError
from musicgen.generate.sampling import check_sampling_args, sample

# torch threads while decoding. One, by measurement (benchmarks/generate.py, docs/results.md "Speed"):
# on an idle 2-core machine a second thread gained the shipped models at most 10% at batch 1
# (15-28% for the transformer at -n 8); with one core kept busy by another process (a
# training run, say) two threads fell to 0.02-0.4x of their idle speed, one stayed at
# 0.6-1.0x. Too little to gain for a user to weigh, so no option: `decode(threads=...)`.
DECODE_THREADS = 1


class Rules(Protocol):
    """What a caller that follows each row (a grammar, length targets, forcing) tells the
    loop; `musicgen.generate.rules.RowRules` is the base every task's rules extend."""

    def mask(self) -> torch.Tensor:
        """(B, V) bool: the tokens each row may take next."""

    def update(self, new: torch.Tensor) -> torch.Tensor:
        """Take the new tokens (B,); return (B,) bool: the rows that are finished."""

    def bias(self) -> torch.Tensor | None:
        """(B, V) added to the logits before sampling, or None."""


@dataclass(frozen=True)
class Sampling:
    """How a token is drawn from a row's logits (see `sample`)."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        check_sampling_args(self.temperature, self.top_k, self.top_p)


@dataclass(frozen=True)
class Snapshot:
    length: int  # tokens in the sequence when it was taken
    state: Any
    pending: int
    logits: torch.Tensor | None
    free: Any = None  # a GuidedDecoder's unconditioned branch: (state, logits)


class Decoder:
    """Rows of tokens and the core's state after them: `logits()` for the next token,
    `push(tokens)` to append, `snapshot()` / `restore()` to go back."""

    def __init__(
        self,
        core: nn.Module,
        prompt: torch.Tensor,
        *,
        use_cache: bool = True,
        context_len: int | None = None,
    ):
        if prompt.dim() != 2 or prompt.size(1) < 1:
            raise ValueError(
                f"prompt must be (batch, time) with time >= 1, got {tuple(prompt.shape)}"
            )
        if context_len is not None and context_len < 1:
            raise ValueError(f"context_len must be >= 1, got {context_len}")
        self.core, self.use_cache, self.context_len = core, use_cache, context_len
        self.seq = prompt.long()  # (B, T)
        self.state: Any = None
        self._pending = self.seq.size(1)  # tokens the state has not read yet
        self._logits: torch.Tensor | None = None  # (B, V) after the whole sequence

    @property
    def batch(self) -> int:
        return self.seq.size(0)

    @torch.no_grad()
    def logits(self) -> torch.Tensor:
        """(B, V): the core's logits for each row's next token."""
        if self._logits is None:
            if self.use_cache:
                new = self.seq[:, self.seq.size(1) - self._pending :]  # (B, pending)
                out, self.state = self.core(new, self.state)  # (B, pending, V)
            else:
                window = self.seq if self.context_len is None else self.seq[:, -self.context_len :]
                out, _ = self.core(window)  # (B, <=T, V)
            self._logits, self._pending = out[:, -1], 0
        return self._logits

    def push(self, tokens: torch.Tensor) -> None:
        """Append `tokens`: (B,) one per row, or (B, n) several."""
        tokens = tokens.to(self.seq.device).long()
        if tokens.dim() == 1:
            tokens = tokens[:, None]
        self.seq = torch.cat([self.seq, tokens], dim=1)  # (B, T + n)
        self._pending += tokens.size(1)
        self._logits = None

    def snapshot(self) -> Snapshot:
        return Snapshot(self.seq.size(1), self.state, self._pending, self._logits)

    def restore(self, snap: Snapshot) -> None:
        """Back to where `snap` was taken: every token pushed since is dropped."""
        if snap.length > self.seq.size(1):
            raise ValueError("a snapshot from after the current sequence cannot be restored")
        self.seq = self.seq[:, : snap.length]
        self.state, self._pending, self._logits = snap.state, snap.pending, snap.logits


class GuidedDecoder(Decoder):
    """Classifier-free guidance (Ho & Salimans 2022) on the tokens marked `unguided`: beside
    the sequence as written, each row is read a second time without them (the controls,
    which training dropped at random so the model also learnt to go on without them),
    and the logits are pushed away from that unconditioned reading:
    `cond + guidance * (cond - free)`. A row whose new token is unguided keeps its second
    state as it was (`core.unread`): rows skip in their own places, the batch stays one.
    Both readings carry their state: the second has no uncached form, so neither has."""

    def __init__(
        self,
        core: nn.Module,
        prompt: torch.Tensor,
        *,
        guidance: float,
        unguided: torch.Tensor,
        context_len: int | None = None,
    ):
        super().__init__(core, prompt, context_len=context_len)
        if guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {guidance}")
        self.guidance = float(guidance)
        self.unguided = unguided.to(self.seq.device).bool()  # (V,)
        # the prompt without its unguided tokens: a column must hold them in every row or none
        marked = self.unguided[self.seq]  # (B, T)
        if bool((marked.any(0) != marked.all(0)).any()):
            raise ValueError(
                "guidance needs the prompt's unguided tokens in the same places in every row"
            )
        self._free_prompt = self.seq[:, ~marked[0]]
        if self._free_prompt.size(1) == 0:
            raise ValueError("guidance needs a prompt with at least one token left unmarked")
        self._free_read = self.seq.size(1)  # tokens of `seq` the second reading has seen
        self._free_state: Any = None
        self._free_logits: torch.Tensor | None = None  # (B, V)

    @torch.no_grad()
    def _free(self) -> torch.Tensor:
        """(B, V): the logits of each row read without its unguided tokens."""
        if self._free_state is None:
            out, self._free_state = self.core(self._free_prompt, None)
            self._free_logits = out[:, -1]
        skips = self.unguided[self.seq[:, self._free_read :]]  # (B, new)
        t, end = 0, skips.size(1)
        while t < end:
            if not bool(skips[:, t].any()):  # a run no row skips: read in one call
                run = t + 1
                while run < end and not bool(skips[:, run].any()):
                    run += 1
                at = self._free_read + t
                out, self._free_state = self.core(
                    self.seq[:, at : self._free_read + run], self._free_state
                )
                self._free_logits = out[:, -1]
                t = run
                continue
            skip = skips[:, t]
            if not bool(skip.all()):
                token = self.seq[:, self._free_read + t : self._free_read + t + 1]
                out, state = self.core(token, self._free_state)
                self._free_state = self.core.unread(self._free_state, state, skip)
                self._free_logits = torch.where(skip[:, None], self._free_logits, out[:, -1])
            t += 1
        self._free_read = self.seq.size(1)
        return self._free_logits

    def logits_cond(self) -> torch.Tensor:
        return super().logits()

    @torch.no_grad()
    def logits(self) -> torch.Tensor:
        cond = self.logits_cond()
        return cond + self.guidance * (cond - self._free())

    def snapshot(self) -> Snapshot:
        self._free()  # what it holds must be the sequence's as it stands
        snap = super().snapshot()
        return Snapshot(
            snap.length,
            snap.state,
            snap.pending,
            snap.logits,
            (self._free_state, self._free_logits),
        )

    def restore(self, snap: Snapshot) -> None:
        if snap.free is None:
            raise ValueError("a guided decoder restores only its own snapshots")
        super().restore(snap)
        self._free_state, self._free_logits = snap.free
        self._free_read = snap.length


def make_decoder(
    core: nn.Module,
    prompt: torch.Tensor,
    *,
    guidance: float = 0.0,
    unguided: torch.Tensor | None = None,
    use_cache: bool = True,
    context_len: int | None = None,
) -> Decoder:
    """A `GuidedDecoder` when there is guidance to give (and tokens to give it on), else a
    plain `Decoder`."""
    if guidance > 0 and unguided is not None and bool(unguided.any()):
        if not hasattr(core, "unread"):
            raise MusicgenError(f"--guidance: {type(core).__name__} cannot be guided")
        if not use_cache:
            # the second reading carries its state; without the cache the first would read
            # a window from nothing, and the two would differ by more than the controls
            raise MusicgenError("--guidance needs the cache: give --guidance 0 with --no-cache")
        return GuidedDecoder(
            core, prompt, guidance=guidance, unguided=unguided, context_len=context_len
        )
    return Decoder(core, prompt, use_cache=use_cache, context_len=context_len)


def step(
    decoder: Decoder,
    sampling: Sampling,
    generator: torch.Generator | None = None,
    rules: Rules | None = None,
    finished: torch.Tensor | None = None,
    pad_id: int = 0,
) -> torch.Tensor:
    """Draw each row's next token under `rules` and push it; (B,) the tokens drawn. A
    finished row (`finished`, (B,) bool) gets `pad_id`."""
    logits = decoder.logits()  # (B, V)
    mask = None
    if rules is not None:
        extra = rules.bias()
        if extra is not None:
            logits = logits + extra.to(logits.device)
        mask = rules.mask().to(logits.device)  # (B, V)
        if finished is not None:
            # a finished row's pad may allow nothing, and its draw is discarded anyway
            mask = mask | finished[:, None]
    new = sample(logits, sampling.temperature, sampling.top_k, sampling.top_p, generator, mask)
    if finished is not None:
        new = new.masked_fill(finished, pad_id)  # (B,)
    decoder.push(new)
    return new


@contextmanager
def decoding_threads(n: int | None = DECODE_THREADS) -> Iterator[None]:
    """torch's intra-op threads set to `n` inside (None: left as they are), the caller's
    number after. The same seed draws the same tokens on any number of threads (tested)."""
    if n is not None and n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextmanager
def evaluating(core: nn.Module) -> Iterator[None]:
    """The core in eval mode (no dropout) while decoding, its own mode after."""
    was_training = core.training
    core.eval()
    try:
        yield
    finally:
        core.train(was_training)


@torch.no_grad()
def decode(
    core: nn.Module,
    prompt: torch.Tensor,
    max_new_tokens: int,
    *,
    sampling: Sampling = Sampling(),
    generator: torch.Generator | None = None,
    rules: Rules | None = None,
    pad_id: int = 0,
    use_cache: bool = True,
    context_len: int | None = None,
    threads: int | None = DECODE_THREADS,
    guidance: float = 0.0,
    unguided: torch.Tensor | None = None,
) -> torch.Tensor:
    """Extend `prompt` (B, T0) by up to `max_new_tokens`; returns (B, T0 + n), prompt first.

    `core(tokens (B, T), state) -> (logits (B, T, V), state)`. `rules` masks and biases
    each draw and says when a row is finished; finished rows receive `pad_id` from then
    on and the loop ends when all are. Sampling is `sample`'s (top_p is nucleus sampling,
    Holtzman et al. 2020). The loop runs on `threads` torch threads (`decoding_threads`).
    `guidance` > 0 guides the draws on the tokens marked in `unguided` (V,) bool
    (`GuidedDecoder`).
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    decoder = make_decoder(
        core,
        prompt,
        guidance=guidance,
        unguided=unguided,
        use_cache=use_cache,
        context_len=context_len,
    )
    finished = torch.zeros(decoder.batch, dtype=torch.bool, device=decoder.seq.device)  # (B,)
    with evaluating(core), decoding_threads(threads):
        for _ in range(max_new_tokens):
            new = step(decoder, sampling, generator, rules, finished, pad_id)
            if rules is not None:
                done = torch.as_tensor(rules.update(new), dtype=torch.bool, device=finished.device)
                finished = finished | done
            if finished.all():
                break
    return decoder.seq
