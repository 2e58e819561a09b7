"""Training windows and streams (shift by one, transposition per piece, determinism) and
validation that scores every piece whole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicgen.config import TrainConfig
from musicgen.data.datamodule import (
    IGNORE,
    EvalStreams,
    MusicDataModule,
    TrainPieces,
    TrainWindows,
    Transposer,
)
from musicgen.data.dataset import TokenDataset

SEQ = 48


@pytest.fixture(scope="module")
def ds(dataset) -> TokenDataset:
    return TokenDataset.open(dataset)


def transposer(ds: TokenDataset, transpose: int, seed: int = 0) -> Transposer:
    v, lo = ds.vocab, ds.split_range("train")[0]
    starts = [e["offset"] - lo for e in ds.index["files"] if e["split"] == "train"]
    return Transposer(
        ds.split_tokens("train"), np.array(starts), v.pitch_start, v.pitch_count, transpose, seed
    )


def windows(ds: TokenDataset, transpose: int = 0, seed: int = 0, length: int = 64) -> TrainWindows:
    return TrainWindows(
        ds.split_tokens("train"), SEQ, length, transposer(ds, transpose, seed), seed
    )


def full_window(item) -> np.ndarray:
    x, y = item
    return torch.cat([x, y[-1:]]).numpy()


def test_windows_are_slices_of_the_training_tokens_shifted_by_one(ds):
    tokens = np.asarray(ds.split_tokens("train"), dtype=np.int64)
    all_windows = np.lib.stride_tricks.sliding_window_view(tokens, SEQ + 1)  # (N, SEQ + 1)
    w = windows(ds)
    for i in range(16):
        x, y = w[i]
        assert x.shape == y.shape == (SEQ,)
        assert x.dtype == y.dtype == torch.int64
        assert torch.equal(x[1:], y[:-1])  # the target is the input moved one token on
        whole = full_window((x, y))
        assert (all_windows == whole).all(axis=1).any(), (
            f"window {i} is not a slice of the training split"
        )


def test_transposition_moves_each_piece_by_one_amount_and_nothing_else(ds):
    v = ds.vocab
    lo, hi = v.pitch_start, v.pitch_start + v.pitch_count
    plain, moved = windows(ds, transpose=0), windows(ds, transpose=5)
    moved.set_epoch(0)
    t = moved.transpose
    shifts = set()
    # which piece each token belongs to, counted here from the BOS tokens of the split
    tokens = np.asarray(ds.split_tokens("train"), dtype=np.int64)
    piece_of = np.cumsum(tokens == v.bos_id) - 1
    every = np.lib.stride_tricks.sliding_window_view(tokens, SEQ + 1)  # (N, SEQ + 1)
    per_piece: dict[int, set[int]] = {}
    for i in range(64):
        a, b = full_window(plain[i]), full_window(moved[i])  # same (seed, epoch, i): same offset
        is_pitch = (a >= lo) & (a < hi)
        assert np.array_equal(is_pitch, (b >= lo) & (b < hi))
        assert np.array_equal(a[~is_pitch], b[~is_pitch]), "non-pitch tokens must not change"
        assert ((b[is_pitch] >= lo) & (b[is_pitch] < hi)).all()
        shifts |= set((b[is_pitch] - a[is_pitch]).tolist())
        offset = int(np.flatnonzero((every == a).all(axis=1))[0])
        pieces = piece_of[offset : offset + SEQ + 1]
        for k, d in zip(pieces[is_pitch].tolist(), (b - a)[is_pitch].tolist(), strict=True):
            per_piece.setdefault(k, set()).add(d)
    assert all(abs(d) <= 5 for d in shifts) and len(shifts) >= 3, shifts
    # one amount per piece, in every window that holds some of it
    assert all(len(d) == 1 for d in per_piece.values()), per_piece
    assert sum(len(d) for d in per_piece.values()) >= 3
    # one amount per piece: a piece's tokens all move by its shift, in every window
    assert np.all((t.shift >= -t.down) & (t.shift <= t.up))
    moved.set_epoch(1)
    before = t.shift.copy()
    moved.set_epoch(2)
    assert not np.array_equal(before, t.shift), "a new epoch draws new transpositions"


def test_transposition_never_leaves_the_pitch_range():
    start, count = 10, 20
    tokens = np.array(
        [1, 10, 3, 29, 4, 1, 12, 3, 25, 4], dtype=np.int64
    )  # piece 0 spans the range; piece 1 has 2 down, 4 up
    t = Transposer(tokens, np.array([0, 5]), start, count, 12, 0)
    assert (t.down.tolist(), t.up.tolist()) == ([0, 2], [0, 4])
    seen = set()
    for epoch in range(300):
        t.set_epoch(epoch)
        assert t.shift[0] == 0
        seen.add(int(t.shift[1]))
        out = t(tokens, 0)
        assert np.array_equal(out[:5], tokens[:5]) and out[6] - tokens[6] == t.shift[1]
    assert seen == set(range(-2, 5))


def test_the_bos_of_a_piece_moved_from_its_own_key_says_so():
    start, count, moved = 10, 20, 99
    tokens = np.array([1, 5, 12, 3, 2, 1, 5, 14, 3, 2], dtype=np.int64)  # two pieces
    t = Transposer(tokens, np.array([0, 5]), start, count, 3, 0, moved)
    seen = set()
    for epoch in range(40):
        t.set_epoch(epoch)
        for window, offset in ((tokens, 0), (tokens[3:], 3)):
            out = t(window, offset)
            for bos in np.flatnonzero(window == 1):
                piece = int(np.searchsorted(t.starts, offset + bos, side="right") - 1)
                assert out[bos] == (moved if t.shift[piece] else 1)
                seen.add(bool(t.shift[piece]))
            rest = (window != 1) & ~((window >= start) & (window < start + count))
            assert np.array_equal(out[rest], window[rest])  # nothing else but the pitches
        # a passage of one piece (infilling) is marked the same way
        assert t.piece(tokens[5:], 1)[0] == (moved if t.shift[1] else 1)
    assert seen == {True, False}
    plain = Transposer(tokens, np.array([0, 5]), start, count, 3, 0)  # no mark to give
    plain.set_epoch(1)
    assert (plain(tokens, 0)[[0, 5]] == 1).all()


def test_a_model_that_moves_pieces_learns_the_mark_and_one_that_does_not_has_none(dataset):
    moves = MusicDataModule(dataset, TrainConfig(seq_len=SEQ, batch_size=2, transpose=5))
    stays = MusicDataModule(dataset, TrainConfig(seq_len=SEQ, batch_size=2, transpose=0))
    # the mark comes right after the dataset's own tokens, so their ids keep their meaning
    assert moves.vocab.moved_id == len(moves.ds.vocab) and stays.vocab.moved_id is None
    assert moves.vocab.plays_like(stays.vocab)  # the same music tokens
    # training reads the mark: some windows begin a moved piece with it, none of the others
    moves.train_set.set_epoch(1)
    stays.train_set.set_epoch(1)
    rows = [moves.train_set[i][0] for i in range(64)]
    assert any((x == moves.vocab.moved_id).any() for x in rows)
    assert not any((stays.train_set[i][0] == len(stays.vocab)).any() for i in range(64))
    # the grammar never writes it: a piece is begun with BOS, in one of the corpus's keys
    stream = moves.vocab.stream()
    assert not moves.vocab.allowed(stream)[moves.vocab.moved_id]
    stream.feed(1)
    assert not moves.vocab.allowed(stream)[moves.vocab.moved_id]
    # and read, it stands for BOS
    marked = moves.vocab.stream()
    marked.feed(int(moves.vocab.to_universal([moves.vocab.moved_id])[0]))
    assert marked.key() == stream.key() and not marked.stats


def test_windows_are_a_function_of_seed_epoch_and_index(ds):
    a, b = windows(ds, transpose=5, seed=3), windows(ds, transpose=5, seed=3)
    order = list(range(32))
    first = [full_window(a[i]) for i in order]
    second = {i: full_window(b[i]) for i in reversed(order)}  # access order does not matter
    assert all(np.array_equal(first[i], second[i]) for i in order)
    a.set_epoch(1)
    b.set_epoch(1)
    assert np.array_equal(full_window(a[5]), full_window(b[5]))
    assert any(not np.array_equal(full_window(a[i]), first[i]) for i in order), (
        "a new epoch draws new windows"
    )
    other_seed = windows(ds, transpose=5, seed=4)
    assert any(not np.array_equal(full_window(other_seed[i]), first[i]) for i in order)


def test_training_on_whole_pieces_walks_each_piece_from_its_bos(ds):
    docs = [np.asarray(d, dtype=np.int64) for d in ds.documents("train")]
    lo = ds.split_range("train")[0]
    starts = np.array([e["offset"] - lo for e in ds.index["files"] if e["split"] == "train"])
    lanes = 3
    pieces = TrainPieces(docs, starts, SEQ, ds.vocab.pad_id, lanes, transposer(ds, 0), seed=2)
    for epoch in (0, 1):
        pieces.set_epoch(epoch)
        read: list[list[int]] = []
        current: list[list[int] | None] = [None] * lanes
        for k in range(len(pieces)):
            x, y, fresh = pieces[k]
            both = (y[:, :-1] != IGNORE) & (y[:, 1:] != IGNORE)
            assert torch.equal(
                x[:, 1:][both], y[:, :-1][both]
            )  # the target is the input one token on
            for r in range(lanes):
                if fresh[r]:
                    assert x[r, 0] == ds.vocab.bos_id  # a fresh row starts a piece at its BOS
                    current[r] = []
                    read.append(current[r])
                current[r] += y[r][y[r] != IGNORE].tolist()
        whole = sorted(tuple(d[1:].tolist()) for d in docs)
        # every piece read whole and in order (a lane that begins its share again may stop mid-piece)
        got = sorted({tuple(r) for r in read if r and r[-1] == ds.vocab.eos_id})
        assert got == whole
        if epoch == 0:
            plan = [list(p) for p in pieces.plan]
    assert plan != pieces.plan, "each epoch deals the pieces anew"
    assert max(len(p) for p in pieces.plan) == len(pieces) and min(
        len(p) for p in pieces.plan
    ) == len(pieces)


def test_validation_scores_every_token_after_bos_exactly_once_piece_by_piece(ds):
    docs = [np.asarray(d, dtype=np.int64) for d in ds.documents("val")]
    assert len(docs) >= 2
    chunks = EvalStreams(docs, SEQ, ds.vocab.pad_id, lanes=3)
    got: dict[int, tuple[list, list]] = {}
    group = -1
    for i in range(len(chunks)):
        x, y, first = chunks[i]
        group += bool(first)
        for r in range(x.size(0)):
            keep = y[r] != IGNORE
            gx, gy = got.setdefault(group * 3 + r, ([], []))
            gx += x[r][keep].tolist()
            gy += y[r][keep].tolist()
            assert (x[r][~keep] == ds.vocab.pad_id).all()
    spelled = sorted(tuple(gy) for _, gy in got.values() if gy)
    assert spelled == sorted(tuple(d[1:].tolist()) for d in docs)  # each piece, whole and in order
    assert all(
        gx == [d for d in docs if d[1:].tolist() == gy][0][:-1].tolist()
        for gx, gy in got.values()
        if gy
    )
    # two devices: each takes whole groups, padded with empty batches to the same count
    parts = [chunks.for_rank(2, r) for r in (0, 1)]
    assert len(parts[0]) == len(parts[1])
    total = sum(int((parts[r][i][1] != IGNORE).sum()) for r in (0, 1) for i in range(len(parts[r])))
    assert total == sum(len(d) - 1 for d in docs)


@pytest.mark.parametrize("streams", [False, True])
def test_data_module_batches(dataset, streams):
    cfg = TrainConfig(seq_len=SEQ, batch_size=4, steps_per_epoch=3, transpose=2)
    dm = MusicDataModule(dataset, cfg, streams=streams)
    batches = list(dm.train_dataloader())
    assert len(batches) == 3
    for x, y, *_ in batches:
        assert x.shape == y.shape and x.shape[1] == SEQ and x.shape[0] <= 4
        both = (y[:, :-1] != IGNORE) & (y[:, 1:] != IGNORE)
        assert torch.equal(x[:, 1:][both], y[:, :-1][both])
    if streams:  # a row that does not start a piece goes on where it stopped in the batch before
        for a, b in zip(batches, batches[1:], strict=False):
            going = ~b[2] & (a[1][:, -1] != IGNORE)
            assert torch.equal(a[1][going, -1], b[0][going, 0])
    ds = dm.ds
    val_docs = ds.documents("val")
    targets = sum(int((y != IGNORE).sum()) for _, y, _ in dm.val_dataloader())
    assert targets == sum(len(d) - 1 for d in val_docs)
    dm.set_epoch(1)
    assert not torch.equal(next(iter(dm.train_dataloader()))[0], batches[0][0])
