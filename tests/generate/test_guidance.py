"""Classifier-free guidance on the controls: the second reading of each row skips its
control tokens in its own places and sees exactly the sequence without them, and the
draws are pushed away from it by `--guidance`."""

from __future__ import annotations

import pytest
import torch

from musicgen.config import ModelConfig
from musicgen.config.training import MODEL_NAMES
from musicgen.generate.decoder import Decoder, GuidedDecoder, make_decoder
from musicgen.models.registry import build_core

VOCAB = 12
MARKED = (9, 10, 11)  # the "control" tokens of these tests


def tiny_core(name: str, window: int = 8) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(
        name=name, vocab_size=VOCAB, d_model=16, n_layers=2, n_heads=2, dropout=0.0, max_len=window
    )
    return build_core(cfg).eval()


def rows_with_marks(batch: int, length: int, seed: int = 1, share: float = 0.25) -> torch.Tensor:
    """(batch, length) tokens, a `share` of them marked, in different places per row."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 9, (batch, length), generator=g)
    marks = torch.rand(batch, length, generator=g) < share
    return torch.where(
        marks, torch.tensor(MARKED)[torch.randint(0, 3, (batch, length), generator=g)], tokens
    )


def unmarked(row: torch.Tensor) -> torch.Tensor:
    return row[~torch.isin(row, torch.tensor(MARKED))]


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("share,every", [(0.25, 3), (0.08, 7)])
def test_the_second_reading_is_each_row_without_its_marked_tokens(name, share, every):
    # 30 tokens a row through a window of 8: the transformer's cache and the gru-attn's
    # memory slide while rows skip in different places; read every few tokens, so that
    # runs no row skips are read in one call, between columns some rows skip
    core = tiny_core(name)
    marked = torch.zeros(VOCAB, dtype=torch.bool)
    marked[list(MARKED)] = True
    prompt = torch.tensor([[1, 10, 2]] * 3)  # a mark in the same column of every row
    body = rows_with_marks(3, 30, share=share)
    dec = GuidedDecoder(core, prompt, guidance=1.0, unguided=marked)
    for t in range(body.size(1)):
        if t % every == 0:
            dec.logits()  # read as it goes, at times, as decoding does
        dec.push(body[:, t])
    free = dec._free()
    for b in range(3):
        alone = unmarked(torch.cat([prompt[b], body[b]]))[None]  # (1, T_b)
        with torch.no_grad():
            out, _ = core(alone)  # the whole row at once, uncached
        torch.testing.assert_close(free[b], out[0, -1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_guided_logits_are_pushed_away_from_the_unconditioned_ones(name):
    core = tiny_core(name)
    marked = torch.zeros(VOCAB, dtype=torch.bool)
    marked[list(MARKED)] = True
    seq = torch.tensor([[1, 9, 3, 4, 10, 5], [1, 9, 3, 11, 4, 5]])
    plain = Decoder(core, seq)
    guided = GuidedDecoder(core, seq[:, :3], guidance=2.0, unguided=marked)
    for t in range(3, seq.size(1)):  # the rows skip in different places
        guided.push(seq[:, t])
    cond = plain.logits()
    with torch.no_grad():
        free = torch.stack([core(unmarked(row)[None])[0][0, -1] for row in seq])
    torch.testing.assert_close(guided.logits(), cond + 2.0 * (cond - free), atol=1e-5, rtol=1e-4)
    # guidance 0, or nothing to guide on: the plain decoder
    assert type(make_decoder(core, seq, guidance=0.0, unguided=marked)) is Decoder
    assert (
        type(make_decoder(core, seq, guidance=2.0, unguided=torch.zeros(VOCAB, dtype=torch.bool)))
        is Decoder
    )


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_snapshot_brings_back_the_second_reading_too(name):
    core = tiny_core(name)
    marked = torch.zeros(VOCAB, dtype=torch.bool)
    marked[list(MARKED)] = True
    body = rows_with_marks(2, 12, seed=3)
    dec = GuidedDecoder(core, torch.tensor([[1], [1]]), guidance=1.5, unguided=marked)
    dec.push(body[:, :6])
    snap, before = dec.snapshot(), dec.logits().clone()
    dec.push(body[:, 6:])
    assert not torch.allclose(dec.logits(), before)
    dec.restore(snap)
    torch.testing.assert_close(dec.logits(), before)


def test_guidance_needs_its_marks_in_the_same_prompt_columns():
    marked = torch.zeros(VOCAB, dtype=torch.bool)
    marked[9] = True
    with pytest.raises(ValueError, match="same places"):
        GuidedDecoder(
            tiny_core("gru"), torch.tensor([[1, 9], [1, 2]]), guidance=1.0, unguided=marked
        )
