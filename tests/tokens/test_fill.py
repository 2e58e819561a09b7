"""Fill in the middle: cuts at bar lines, the rearranged layout, and the training windows."""

import numpy as np
import pytest

from musicgen.config import TrainConfig
from musicgen.data.datamodule import MusicDataModule
from musicgen.data.dataset import TokenDataset
from musicgen.tokens.encoding import decode
from musicgen.tokens.fill import Timeline, layout, rearrange, restore, seams, training_cuts


@pytest.fixture(scope="module")
def pieces(dataset):
    ds = TokenDataset.open(dataset)
    vocab = ds.vocab.with_fill()
    return vocab, [vocab.to_universal(d) for d in ds.documents("train")]


def test_the_seams_are_appended_so_dataset_ids_keep_their_meaning(dataset):
    plain = TokenDataset.open(dataset).vocab
    fill = plain.with_fill()
    assert fill.tokens[: len(plain)] == plain.tokens
    assert fill.tokens[len(plain) :] == ["Fill_after", "Fill_middle", "Fill_end", "Fill_gap"]
    assert fill.can_fill and not plain.can_fill and fill.plays_like(plain)
    assert not fill.fills_an_old_layout and not plain.fills_an_old_layout


def test_a_vocabulary_of_the_first_layout_cannot_fill(dataset):
    """Trained before the layout gave the gap's length: its seams lack Fill_gap."""
    from musicgen.tokens.vocab import Vocabulary

    fill = TokenDataset.open(dataset).vocab.with_fill()
    old = Vocabulary(fill.cfg, fill.uids[:-1])
    assert old.fills_an_old_layout and not old.can_fill


def drawn_cuts(pieces, seed: int, draws: int, max_tokens: int | None):
    """(piece, its timeline, cuts) for `draws` training draws of up to 8 bars on each piece
    (`max_tokens` None: the piece's length); a draw that finds no cuts is left out."""
    vocab, docs = pieces
    rng = np.random.default_rng(seed)
    for uids in docs:
        line = Timeline(uids, vocab)
        for _ in range(draws):
            cuts = training_cuts(line, rng, 8, len(uids) if max_tokens is None else max_tokens)
            if cuts is not None:
                yield uids, line, cuts


def test_rearranged_windows_restore_to_the_same_notes(pieces):
    vocab, _ = pieces
    tried = 0
    for uids, line, (a, b) in drawn_cuts(pieces, seed=0, draws=4, max_tokens=None):
        before, middle, after = line.parts(a, b)
        ids = rearrange(before, middle, after, vocab, b.step - a.step)
        seam = seams(vocab)
        assert [list(ids).count(s) for s in seam] == [1, 1, 1, 1]
        # the gap's Shifts put the after-part at its own step on the piece's clock
        fa, fg = seam[0], seam[3]
        stream = vocab.stream()
        stream.feed_all(ids[: int(np.flatnonzero(ids == fa)[0])])
        assert stream.step == b.step
        assert np.flatnonzero(ids == fg)[0] == len(before)
        original, _ = decode(uids, vocab.cfg)
        back, stats = decode(restore(ids, vocab), vocab.cfg)
        assert not stats
        np.testing.assert_array_equal(back.notes, original.notes)
        tried += 1
    assert tried > 20


def test_a_middle_begins_and_ends_exactly_on_its_bar_lines(pieces):
    vocab, docs = pieces
    line = Timeline(docs[0], vocab)
    lines = line.bar_lines
    a, b = line.cut(int(lines[1])), line.cut(int(lines[3]))
    before, middle, after = line.parts(a, b)
    stream = vocab.stream()
    stream.feed_all(before)
    assert stream.step == lines[1]
    stream.begin_passage()
    notes = stream.feed_all(middle)
    assert stream.step == lines[3]
    assert notes and all(lines[1] <= n.step < lines[3] for n in notes)


def test_a_gap_crossing_a_cut_is_spelt_as_two_of_the_same_total(pieces):
    vocab, docs = pieces
    line = Timeline(docs[0], vocab)
    shift = vocab.space.shift
    # a step inside a Shift: one step after a Shift's start
    i = int(np.flatnonzero(shift.contains(line.uids) & (line.after - line.before > 1))[0])
    cut = line.cut(int(line.before[i]) + 1)
    steps = lambda ids: sum(int(vocab.space.value[u]) for u in ids)  # noqa: E731
    assert steps(cut.left) + steps(cut.right) == steps(line.uids[cut.lo : cut.hi])
    assert steps(cut.left) == cut.step - int(line.before[cut.lo])  # the nearest spellable step
    assert line.before[cut.lo] < cut.step <= line.after[cut.hi - 1]


def _loader_rows(dataset, infill, streams):
    cfg = TrainConfig(seq_len=64, batch_size=8, infill=infill, transpose=0)
    dm = MusicDataModule(dataset, cfg, streams=streams)
    return dm, [dm.train_set[k] for k in range(12)]


def test_the_layout_keeps_the_middle_whole_and_shares_the_rest(pieces):
    vocab, docs = pieces
    line = Timeline(docs[0], vocab)
    a, b = line.cut(int(line.bar_lines[2])), line.cut(int(line.bar_lines[4]))
    before, middle, after = line.parts(a, b)
    length = 2 * len(middle)  # room for more than MIN_CONTEXT either side
    ids = layout(before, middle, after, vocab, b.step - a.step, length)
    fa, fm, fe, fg = seams(vocab)
    assert len(ids) == length
    np.testing.assert_array_equal(ids[np.flatnonzero(ids == fm)[0] + 1 : -1], middle)
    kept_before = ids[: np.flatnonzero(ids == fg)[0]]
    kept_after = ids[np.flatnonzero(ids == fa)[0] + 1 : np.flatnonzero(ids == fm)[0]]
    gap = len(vocab.spell_gap(b.step - a.step))
    room = length - len(middle) - 4 - gap  # the seams and the gap's Shifts
    assert (len(kept_before), len(kept_after)) == (room - room // 2, room // 2)
    np.testing.assert_array_equal(kept_before, before[-len(kept_before) :])
    np.testing.assert_array_equal(kept_after, after[: len(kept_after)])


@pytest.mark.parametrize("streams", [False, True])
def test_a_share_of_training_windows_is_rearranged(dataset, streams):
    dm, items = _loader_rows(dataset, 0.5, streams)
    fa, fm, fe = (dm.vocab.fill_id(s) for s in ("after", "middle", "end"))
    xs = torch_rows(items, streams)
    has = np.array([(x == fa).any() for x, _ in xs])
    assert 0.25 <= has.mean() <= 0.75
    for x, y in xs:
        if (x == fa).any():  # the layout: Fill_after, then Fill_middle, then Fill_end
            assert np.flatnonzero(x == fa)[0] < np.flatnonzero(x == fm)[0]
            assert (y == fe).sum() == 1 and np.flatnonzero(y == fe)[0] > np.flatnonzero(x == fm)[0]
    if streams:  # the rows that walk pieces are never rearranged: only the fill lanes
        for x, _, fresh in items:
            lanes = [(x[r].numpy() == fa).any() for r in range(x.shape[0])]
            assert lanes == [True] * 4 + [False] * 4 and fresh[:4].all()


def test_no_seams_without_infill(dataset):
    dm, items = _loader_rows(dataset, 0.0, False)
    # the dataset's tokens and the controls: no seam
    assert not dm.vocab.can_fill and dm.vocab == dm.ds.vocab.with_controls()  # transpose=0


def torch_rows(items, streams):
    if not streams:
        return [(x.numpy(), y.numpy()) for x, y in items]
    return [(x[r].numpy(), y[r].numpy()) for x, y, _ in items for r in range(x.shape[0])]


@pytest.mark.parametrize("seq_len", [12, 24, 48])
def test_rearranged_windows_always_fit_even_when_bars_are_long(dataset, seq_len):
    """A window shorter than a bar or two: the middle and the split gaps must still fit."""
    cfg = TrainConfig(seq_len=seq_len, batch_size=4, infill=1.0, transpose=0, infill_bars=8)
    dm = MusicDataModule(dataset, cfg, streams=False)
    fe = dm.vocab.fill_id("end")
    fm = dm.vocab.fill_id("middle")
    for i in range(300):
        x, y = dm.train_set[i]
        assert x.shape == (seq_len,) and y.shape == (seq_len,)
        if (x == fm).any():
            assert (y == fe).sum() == 1  # the middle is never cut off


def test_whole_piece_training_keeps_a_row_of_each_kind(dataset):
    from musicgen.errors import MusicgenError

    dm = MusicDataModule(dataset, TrainConfig(seq_len=64, batch_size=2, infill=1.0), streams=True)
    assert dm.fill_lanes == 1  # one row walks the pieces even at --infill 1
    dm = MusicDataModule(dataset, TrainConfig(seq_len=64, batch_size=3, infill=0.1), streams=True)
    assert dm.fill_lanes == 1  # and a small share still trains some
    with pytest.raises(MusicgenError, match="batch-size 2"):
        MusicDataModule(dataset, TrainConfig(seq_len=64, batch_size=1, infill=0.5), streams=True)


def test_infilling_reads_a_passage_as_training_lays_it_out(dataset):
    from musicgen.generate.infill import _context

    cfg = TrainConfig(seq_len=160, batch_size=4, infill=1.0, transpose=0)
    dm = MusicDataModule(dataset, cfg, streams=False)
    filler, vocab = dm.filler, dm.vocab
    line = filler.lines[0]
    a, b = line.cut(int(line.bar_lines[1])), line.cut(int(line.bar_lines[2]))  # one bar
    before, middle, after = line.parts(a, b)
    window = layout(before, middle, after, vocab, b.step - a.step, filler.length)
    assert len(window) <= filler.length  # a training row: inputs are all but its last token
    prompt = _context(line, a.step, b.step, cfg.seq_len).prompt
    written = [*vocab.lookup[middle], vocab.fill_id("end")]
    assert [*prompt, *written] == list(vocab.lookup[window])


def test_training_middles_leave_room_for_context(pieces):
    longest = 0
    for _, line, cuts in drawn_cuts(pieces, seed=1, draws=8, max_tokens=40):
        longest = max(longest, len(line.parts(*cuts)[1]))
    assert 20 < longest <= 40 + 4  # the Shifts split at the two cuts may add a few


def test_a_span_longer_than_training_middles_still_reads_some_music_either_side(pieces):
    from musicgen.tokens.fill import MIN_CONTEXT

    vocab, docs = pieces
    line = Timeline(docs[0], vocab)
    a, b = line.cut(int(line.bar_lines[1])), line.cut(int(line.bar_lines[4]))
    before, middle, after = line.parts(a, b)
    length = len(middle)  # the middle alone fills the window
    ids = layout(before, middle, after, vocab, b.step - a.step, length)
    gap = len(vocab.spell_gap(b.step - a.step))
    assert len(ids) == len(middle) + 4 + gap + int(length * MIN_CONTEXT)
