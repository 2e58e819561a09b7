"""Training windows (shift by one, transposition, determinism) and validation chunks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicgen.config import TrainConfig
from musicgen.data.datamodule import (
    IGNORE,
    EvalChunks,
    MusicDataModule,
    TrainWindows,
    transpose_window,
)
from musicgen.data.dataset import TokenDataset
from tests._fixtures import dataset  # noqa: F401 - pytest fixture

SEQ = 48


@pytest.fixture(scope="module")
def ds(dataset) -> TokenDataset:  # noqa: F811
    return TokenDataset.open(dataset)


def windows(ds: TokenDataset, transpose: int = 0, seed: int = 0, length: int = 64) -> TrainWindows:
    v = ds.vocab
    return TrainWindows(ds.split_tokens("train"), SEQ, length, v.pitch_start, v.pitch_count, transpose, seed)


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
        assert (all_windows == whole).all(axis=1).any(), f"window {i} is not a slice of the training split"


def test_transposition_moves_every_pitch_by_one_amount_and_nothing_else(ds):
    v = ds.vocab
    lo, hi = v.pitch_start, v.pitch_start + v.pitch_count
    plain, moved = windows(ds, transpose=0), windows(ds, transpose=5)
    shifts = set()
    for i in range(64):
        a, b = full_window(plain[i]), full_window(moved[i])  # same (seed, epoch, i): same offset
        is_pitch = (a >= lo) & (a < hi)
        assert np.array_equal(is_pitch, (b >= lo) & (b < hi))
        assert np.array_equal(a[~is_pitch], b[~is_pitch]), "non-pitch tokens must not change"
        assert ((b[is_pitch] >= lo) & (b[is_pitch] < hi)).all()
        delta = set((b[is_pitch] - a[is_pitch]).tolist())
        assert len(delta) <= 1, f"window {i}: pitches moved by different amounts {delta}"
        if delta:
            d = delta.pop()
            assert abs(d) <= 5
            shifts.add(d)
    assert len(shifts) >= 3, f"transposition hardly ever happens: {shifts}"


def test_transposition_never_leaves_the_pitch_range():
    start, count = 10, 20
    window = np.array([1, 10, 3, 29, 4, 15, 2], dtype=np.int64)  # lowest and highest pitch present
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert np.array_equal(transpose_window(window, start, count, 12, rng), window)
    narrow = np.array([1, 12, 3, 25, 4], dtype=np.int64)  # room: 2 down, 4 up
    seen = {int(transpose_window(narrow, start, count, 12, rng)[1] - 12) for _ in range(300)}
    assert seen == set(range(-2, 5))


def test_windows_are_a_function_of_seed_epoch_and_index(ds):
    a, b = windows(ds, transpose=5, seed=3), windows(ds, transpose=5, seed=3)
    order = list(range(32))
    first = [full_window(a[i]) for i in order]
    second = {i: full_window(b[i]) for i in reversed(order)}  # access order does not matter
    assert all(np.array_equal(first[i], second[i]) for i in order)
    a.epoch = b.epoch = 1
    assert np.array_equal(full_window(a[5]), full_window(b[5]))
    assert any(not np.array_equal(full_window(a[i]), first[i]) for i in order), "a new epoch draws new windows"
    other_seed = windows(ds, transpose=5, seed=4)
    assert any(not np.array_equal(full_window(other_seed[i]), first[i]) for i in order)


def test_validation_chunks_cover_every_token_after_bos_exactly_once(ds):
    docs = [np.asarray(d, dtype=np.int64) for d in ds.documents("val")]
    assert len(docs) >= 2
    chunks = EvalChunks(docs, SEQ, ds.vocab.pad_id)
    targets = [chunks[i][1] for i in range(len(chunks))]
    assert sum(int((y != IGNORE).sum()) for y in targets) == sum(len(d) - 1 for d in docs)
    # piece by piece, the targets spell out the piece after its BOS and the inputs run one behind
    i = 0
    for doc in docs:
        got_y, got_x = [], []
        while len(got_y) < len(doc) - 1:
            x, y = chunks[i]
            keep = y != IGNORE
            assert keep.sum() > 0 and (keep[: int(keep.sum())]).all(), "ignored targets only at the end"
            got_y += y[keep].tolist()
            got_x += x[keep].tolist()
            assert (x[~keep] == ds.vocab.pad_id).all()
            i += 1
        assert got_y == doc[1:].tolist()
        assert got_x == doc[:-1].tolist()
    assert i == len(chunks)
    padded = chunks.padded_to(4)  # what the data module hands a 4-device run
    assert len(padded) % 4 == 0 and len(padded) - len(chunks) < 4
    assert sum(int((padded[j][1] != IGNORE).sum()) for j in range(len(padded))) == sum(len(d) - 1 for d in docs)


def test_data_module_batches(dataset):  # noqa: F811
    cfg = TrainConfig(seq_len=SEQ, batch_size=4, steps_per_epoch=3, transpose=2)
    dm = MusicDataModule(dataset, cfg)
    batches = list(dm.train_dataloader())
    assert len(batches) == 3
    for x, y in batches:
        assert x.shape == y.shape == (4, SEQ)
        assert torch.equal(x[:, 1:], y[:, :-1])
    ds = dm.ds
    val_docs = ds.documents("val")
    targets = sum(int((y != IGNORE).sum()) for _, y in dm.val_dataloader())
    assert targets == sum(len(d) - 1 for d in val_docs)
    dm.set_epoch(1)
    assert not torch.equal(next(iter(dm.train_dataloader()))[0], batches[0][0])
