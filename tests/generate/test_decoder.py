"""The decode loop's torch threads: one while decoding, the caller's after, and the same
tokens whatever the number (the same seed and settings give the same MIDI bytes)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from musicgen.checkpoint import load_model
from musicgen.generate.decoder import DECODE_THREADS, Sampling, decode, decoding_threads
from musicgen.pretrained import pretrained_models


class ThreadsSeen(nn.Module):
    """Uniform logits; records torch's thread count at every call."""

    def __init__(self, vocab: int = 5):
        super().__init__()
        self.vocab, self.seen = vocab, []

    def forward(self, tokens, state=None):
        self.seen.append(torch.get_num_threads())
        return torch.zeros(*tokens.shape, self.vocab), state  # (B, T, V)


@pytest.fixture
def two_threads():
    """The process on two torch threads, as an idle 2-core machine starts it."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_decoding_runs_on_one_thread_and_gives_the_callers_back(two_threads):
    # The behaviour chosen by benchmarks/generate.py: batch-1 steps lose nothing on one
    # thread and collapse on two when another process holds a core (the figures by DECODE_THREADS in musicgen/generate/decoder.py).
    assert DECODE_THREADS == 1
    core = ThreadsSeen()
    decode(core, torch.zeros(1, 3, dtype=torch.long), 6)
    assert core.seen == [1] * 6
    assert torch.get_num_threads() == 2
    core.seen.clear()
    decode(core, torch.zeros(1, 3, dtype=torch.long), 4, threads=None)  # left as it is
    assert core.seen == [2] * 4


def test_the_callers_threads_come_back_after_an_error(two_threads):
    class Broken(ThreadsSeen):
        def forward(self, tokens, state=None):
            super().forward(tokens, state)
            raise RuntimeError("boom")

    core = Broken()
    with pytest.raises(RuntimeError, match="boom"):
        decode(core, torch.zeros(1, 2, dtype=torch.long), 3)
    assert core.seen == [1] and torch.get_num_threads() == 2
    with pytest.raises(ValueError, match="threads"):
        with decoding_threads(0):
            pass


SHIPPED = pretrained_models()


@pytest.mark.skipif(len(SHIPPED) < 3, reason="the shipped models are not in this checkout")
@pytest.mark.parametrize("name", ["gru", "gru-attn", "transformer"])
def test_shipped_models_draw_the_same_tokens_on_one_thread_or_two(name, two_threads):
    """Moving decoding from torch's default (two threads here) to one changed no song:
    the shipped models' products come out bit for bit the same, cached or not."""
    model = load_model(SHIPPED[name])
    prompt = torch.tensor([[1]] * 2)  # (B=2, 1): BOS
    for use_cache in (True, False):
        runs = [
            decode(
                model.core,
                prompt,
                12,
                sampling=Sampling(1.0, 0, 0.98),
                generator=torch.Generator().manual_seed(7),
                use_cache=use_cache,
                context_len=16,  # the same products as the full window, fewer of them
                threads=n,
            )
            for n in (1, 2)
        ]
        assert torch.equal(runs[0], runs[1]), (name, use_cache)
