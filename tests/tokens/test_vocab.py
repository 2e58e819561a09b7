"""The corpus vocabulary: JSON persistence, loading errors, and the `allowed_next` grammar."""

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musicgen.config import EncodingConfig
from musicgen.errors import MusicgenError
from musicgen.midi.read import read_score
from musicgen.tokens.encoding import decode, encode, token_space
from musicgen.tokens.space import BOS, EOS, PAD
from musicgen.tokens.vocab import FORMAT, VERSION, Vocabulary

CFG = EncodingConfig()


@pytest.fixture(scope="module")
def corpus_vocab(corpus_files) -> Vocabulary:
    used = set()
    for f in corpus_files[:40]:
        used |= set(encode(read_score(f), CFG).ids.tolist())
    return Vocabulary(CFG, used)


def full_vocab(cfg: EncodingConfig) -> Vocabulary:
    """Every token the encoding can produce."""
    return Vocabulary(cfg, range(token_space(cfg).size))


VOCABS = {
    "full": lambda: full_vocab(CFG),
    "no-velocity": lambda: full_vocab(dataclasses.replace(CFG, velocity_bins=0)),
    "specials-only": lambda: Vocabulary(CFG, []),
}


# --- persistence -------------------------------------------------------------------------


def test_json_round_trip(tmp_path, corpus_vocab):
    path = corpus_vocab.save(tmp_path / "vocab.json")
    text = path.read_text(encoding="utf-8")
    assert text.startswith('{\n  "format"')  # indented, readable
    data = json.loads(text)
    assert data["format"] == FORMAT == "musicgen-vocabulary" and data["version"] == VERSION == 1
    assert data["encoding"]["steps_per_quarter"] == 12
    assert data["tokens"][:3] == ["PAD", "BOS", "EOS"]
    back = Vocabulary.load(path)
    assert back == corpus_vocab and back.tokens == corpus_vocab.tokens
    assert np.array_equal(back.uids, corpus_vocab.uids)
    # every pitch is kept so transposition cannot leave the vocabulary
    assert len(back.note_ids) == 88 and all(back.tokens[i].startswith("Pitch_") for i in back.note_ids)


def test_conversions(corpus_vocab, corpus_files):
    enc = encode(read_score(corpus_files[0]), CFG)
    ids, unknown = corpus_vocab.from_universal(enc.ids)
    assert unknown == 0 and np.array_equal(corpus_vocab.to_universal(ids), enc.ids)
    stray = token_space(CFG).timesig_id(31, 32)  # never in a chorale
    ids, unknown = corpus_vocab.from_universal(np.array([BOS, stray, EOS]))
    assert unknown == 1 and ids.tolist() == [corpus_vocab.bos_id, corpus_vocab.eos_id]


def _write(tmp_path, obj, raw=None):
    path = tmp_path / "vocab.json"
    path.write_text(raw if raw is not None else json.dumps(obj), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: "{not json", "cannot read vocabulary"),
        (lambda d: "", "cannot read vocabulary"),
        (lambda d: [1, 2, 3], "not a musicgen vocabulary"),
        (lambda d: {**d, "format": "something-else"}, "not a musicgen vocabulary"),
        (lambda d: {k: v for k, v in d.items() if k != "format"}, "not a musicgen vocabulary"),
        (lambda d: {**d, "version": 99}, "vocabulary version 99 is not supported (expected 1)"),
        (lambda d: {k: v for k, v in d.items() if k != "encoding"}, "malformed vocabulary: missing 'encoding'"),
        (lambda d: {k: v for k, v in d.items() if k != "tokens"}, "malformed vocabulary: missing 'tokens'"),
        (lambda d: {**d, "encoding": "twelve"}, "malformed vocabulary: bad encoding settings"),
        (lambda d: {**d, "encoding": {**d["encoding"], "pitch_min": 200}}, "malformed vocabulary: bad encoding settings"),
        (lambda d: {**d, "encoding": {**d["encoding"], "pitch_min": 21.5}}, "malformed vocabulary: bad encoding settings"),
        (lambda d: {**d, "tokens": "PAD BOS EOS"}, "'tokens' must be a list of strings"),
        (lambda d: {**d, "tokens": [*d["tokens"], ["nested"]]}, "'tokens' must be a list of strings"),
        (lambda d: {**d, "tokens": [*d["tokens"], "Banjo_5"]}, "1 tokens its encoding cannot produce, e.g. 'Banjo_5'"),
        (lambda d: {**d, "tokens": [*d["tokens"], "Shift_49"]}, "tokens its encoding cannot produce, e.g. 'Shift_49'"),
        (lambda d: {**d, "tokens": list(reversed(d["tokens"]))}, "token order does not match its encoding"),
    ],
)
def test_bad_vocabulary_files_raise_a_clear_error(tmp_path, corpus_vocab, change, message):
    changed = change(corpus_vocab.to_json())
    path = _write(tmp_path, None, raw=changed) if isinstance(changed, str) else _write(tmp_path, changed)
    with pytest.raises(MusicgenError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        Vocabulary.load(path)
    assert "\n" not in str(info.value)


def test_missing_vocabulary_file(tmp_path):
    with pytest.raises(MusicgenError, match="no vocabulary at"):
        Vocabulary.load(tmp_path / "nope.json")


# --- grammar -----------------------------------------------------------------------------


def _check_grammar(v: Vocabulary) -> None:
    allowed = v.allowed_next()
    fam = v.families
    V = len(v)
    assert allowed.shape == (V, V) and allowed.dtype == bool
    assert allowed.any(axis=1).all(), "every row must allow something"
    is_dur, is_pitch = fam == "dur", fam == "pitch"
    if is_dur.any():
        for row in np.flatnonzero(is_pitch):
            assert np.array_equal(allowed[row], is_dur), f"after {v.tokens[row]} only Dur"
    else:  # a Pitch could never be completed: it is never allowed
        assert not allowed[:, is_pitch].any()
    # a Dur may only follow a Pitch
    assert not allowed[~is_pitch][:, is_dur].any()
    # nothing but padding after EOS (or PAD)
    for row in (EOS, PAD):
        assert np.flatnonzero(allowed[row]).tolist() == [PAD]
    # BOS is never generated; PAD only as padding after the end
    assert not allowed[:, BOS].any()
    others = np.ones(V, dtype=bool)
    others[[PAD, EOS]] = False
    assert not allowed[others, PAD].any()
    # Prog and Vel lead into a note
    for row in np.flatnonzero(fam == "prog"):
        assert set(fam[allowed[row]]) <= {"vel", "pitch"}
    for row in np.flatnonzero(fam == "vel"):
        assert set(fam[allowed[row]]) == {"pitch"}
    # the piece can start with a note and end after one
    assert allowed[BOS, is_pitch].any() or not is_dur.any()
    for row in np.flatnonzero(is_dur):
        assert allowed[row, EOS]


@pytest.mark.parametrize("name", list(VOCABS))
def test_allowed_next_grammar(name):
    _check_grammar(VOCABS[name]())


def test_allowed_next_grammar_corpus_vocab(corpus_vocab):
    _check_grammar(corpus_vocab)


def test_every_encoded_sequence_obeys_the_grammar(corpus_vocab, corpus_files):
    allowed = corpus_vocab.allowed_next()
    for f in corpus_files[:40]:
        ids, unknown = corpus_vocab.from_universal(encode(read_score(f), CFG).ids)
        assert unknown == 0
        assert allowed[ids[:-1], ids[1:]].all(), f.name


def random_walk(v: Vocabulary, allowed: np.ndarray, seed: int, length: int) -> np.ndarray:
    """BOS, then `length` tokens drawn uniformly from `allowed_next`, then the shortest way to EOS."""
    rng = np.random.default_rng(seed)
    seq = [BOS]
    while len(seq) <= length or seq[-1] != EOS:
        options = np.flatnonzero(allowed[seq[-1]])
        if len(seq) > length and allowed[seq[-1], EOS]:
            seq.append(EOS)
        else:
            seq.append(int(rng.choice(options)))
        if seq[-1] == EOS:
            break
    return np.array(seq)


_WALK_VOCABS = {name: make() for name, make in VOCABS.items()}
_ALLOWED = {name: v.allowed_next() for name, v in _WALK_VOCABS.items()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(_WALK_VOCABS)), seed=st.integers(0, 2**32 - 1), length=st.integers(0, 300))
def test_random_walks_over_the_grammar_decode_cleanly(name, seed, length):
    v, allowed = _WALK_VOCABS[name], _ALLOWED[name]
    seq = random_walk(v, allowed, seed, length)
    assert allowed[seq[:-1], seq[1:]].all()
    score, stats = decode(v.to_universal(seq), v.cfg)
    assert not +stats, dict(stats)  # no Pitch without Dur, no Dur without Pitch
    n_pitch = int(np.isin(seq, v.note_ids).sum())
    assert score.num_notes == n_pitch
    if n_pitch:
        assert score.notes["duration"].min() >= 1 / v.cfg.steps_per_quarter - 1e-12
        assert (score.notes["start"] >= 0).all()
        assert ((v.cfg.pitch_min <= score.notes["pitch"]) & (score.notes["pitch"] <= v.cfg.pitch_max)).all()
