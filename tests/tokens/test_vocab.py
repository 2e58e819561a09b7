"""The corpus vocabulary: JSON persistence, loading errors, and its grammar masks."""

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musicgen.config import EncodingConfig
from musicgen.errors import MusicgenError
from musicgen.midi.read import read_score
from musicgen.midi.score import NOTE_DTYPE, Score
from musicgen.tokens.encoding import decode, encode
from musicgen.tokens.space import BOS, EOS, PAD, token_space
from musicgen.tokens.vocab import FORMAT, VERSION, Vocabulary

CFG = EncodingConfig(time="beats")


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
    assert data["format"] == FORMAT == "musicgen-vocabulary" and data["version"] == VERSION == 2
    assert data["encoding"]["steps_per_quarter"] == 48 and data["encoding"]["time"] == "beats"
    assert data["tokens"][:3] == ["PAD", "BOS", "EOS"]
    back = Vocabulary.load(path)
    assert back == corpus_vocab and back.tokens == corpus_vocab.tokens
    assert np.array_equal(back.uids, corpus_vocab.uids)
    # every pitch is kept so transposition cannot leave the vocabulary
    assert len(back.note_ids) == 88 and all(
        back.tokens[i].startswith("Pitch_") for i in back.note_ids
    )


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
        (lambda d: {**d, "version": 99}, "vocabulary version 99 is not supported (expected 2)"),
        (
            lambda d: {**d, "version": 1},
            "written by an older musicgen (representation v1); run `musicgen ingest` again",
        ),
        (
            lambda d: {**d, "encoding": {**d["encoding"], "time": "auto"}},
            "bad encoding settings (its time mode is not decided",
        ),
        (
            lambda d: {k: v for k, v in d.items() if k != "encoding"},
            "malformed vocabulary: missing 'encoding'",
        ),
        (
            lambda d: {k: v for k, v in d.items() if k != "tokens"},
            "malformed vocabulary: missing 'tokens'",
        ),
        (lambda d: {**d, "encoding": "twelve"}, "malformed vocabulary: bad encoding settings"),
        (
            lambda d: {**d, "encoding": {**d["encoding"], "pitch_min": 200}},
            "malformed vocabulary: bad encoding settings",
        ),
        (
            lambda d: {**d, "encoding": {**d["encoding"], "pitch_min": 21.5}},
            "malformed vocabulary: bad encoding settings",
        ),
        (lambda d: {**d, "tokens": "PAD BOS EOS"}, "'tokens' must be a list of strings"),
        (
            lambda d: {**d, "tokens": [*d["tokens"], ["nested"]]},
            "'tokens' must be a list of strings",
        ),
        (
            lambda d: {**d, "tokens": [*d["tokens"], "Banjo_5"]},
            "1 tokens its encoding cannot produce, e.g. 'Banjo_5'",
        ),
        (
            lambda d: {**d, "tokens": [*d["tokens"], "Shift_193"]},
            "tokens its encoding cannot produce, e.g. 'Shift_193'",
        ),
        (
            lambda d: {**d, "tokens": list(reversed(d["tokens"]))},
            "token order does not match its encoding",
        ),
    ],
)
def test_bad_vocabulary_files_raise_a_clear_error(tmp_path, corpus_vocab, change, message):
    changed = change(corpus_vocab.to_json())
    path = (
        _write(tmp_path, None, raw=changed)
        if isinstance(changed, str)
        else _write(tmp_path, changed)
    )
    with pytest.raises(
        MusicgenError, match=message.replace("(", r"\(").replace(")", r"\)")
    ) as info:
        Vocabulary.load(path)
    assert "\n" not in str(info.value)


def test_missing_vocabulary_file(tmp_path):
    with pytest.raises(MusicgenError, match="no vocabulary at"):
        Vocabulary.load(tmp_path / "nope.json")


# --- grammar -----------------------------------------------------------------------------


def band_score() -> Score:
    """A little band: piano chords, bass, drums, one tempo change."""
    rows = []
    for beat in range(16):
        rows += [
            (beat, 1, 60 + beat % 5, 70 + beat, 0, False),
            (beat, 1, 64, 70, 0, False),
            (beat, 0.5, 36 + beat % 3, 90, 33, False),
        ]
        rows += [
            (beat, 0.1, 36 if beat % 2 == 0 else 38, 100, 0, True),
            (beat + 0.5, 0.1, 42, 60 + 3 * beat, 0, True),
        ]
    arr = np.array(rows, dtype=NOTE_DTYPE)
    return Score(
        notes=arr[np.argsort(arr["start"], kind="stable")], tempos=[(0, 100.0), (8, 110.0)]
    )


def test_every_encoded_sequence_obeys_the_grammar(corpus_vocab, corpus_files):
    scores = [read_score(f) for f in corpus_files[:40]]
    band = encode(band_score(), CFG)
    vocabs = [
        (corpus_vocab, [encode(s, CFG).ids for s in scores]),
        (Vocabulary(CFG, band.ids), [band.ids]),
    ]
    for v, sequences in vocabs:
        for uids in sequences:
            ids, unknown = v.from_universal(uids)
            assert unknown == 0
            stream = v.stream()
            for t in ids.tolist():
                assert v.allowed(stream)[t], f"{v.tokens[t]} refused after {stream.key()[:4]}"
                stream.feed(v.uids[t])
            assert not stream.stats


def random_walk(v: Vocabulary, seed: int, length: int) -> np.ndarray:
    """BOS, then `length` tokens drawn uniformly from what the grammar allows, then EOS as soon as it may."""
    rng = np.random.default_rng(seed)
    stream = v.stream()
    seq = []
    while not seq or seq[-1] != EOS:
        allowed = v.allowed(stream)
        if len(seq) > length and allowed[EOS]:
            t = EOS
        else:
            t = int(rng.choice(np.flatnonzero(allowed)))
        seq.append(t)
        stream.feed(v.uids[t])
    return np.array(seq)


_WALK_VOCABS = {name: make() for name, make in VOCABS.items()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(_WALK_VOCABS)),
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(0, 300),
)
def test_random_walks_over_the_grammar_decode_cleanly(name, seed, length):
    v = _WALK_VOCABS[name]
    seq = random_walk(v, seed, length)
    assert seq[0] == BOS and seq[-1] == EOS and PAD not in seq
    score, stats = decode(v.to_universal(seq), v.cfg)
    assert not +stats, dict(
        stats
    )  # no Pitch without Dur, no undeclared instrument, no note without velocity
    assert score.num_notes == int(np.isin(seq, v.note_ids).sum())
    declared = {v.tokens[t].split("_")[1] for t in seq if v.tokens[t].startswith("Inst_")}
    played = {v.tokens[t].split("_")[1] for t in seq if v.tokens[t].startswith("Prog_")}
    assert played <= declared
    pitched = score.notes[~score.notes["drum"]]
    if len(pitched):
        assert pitched["duration"].min() >= 1 / v.cfg.steps_per_quarter - 1e-12
        assert ((v.cfg.pitch_min <= pitched["pitch"]) & (pitched["pitch"] <= v.cfg.pitch_max)).all()
    assert (score.notes["start"] >= 0).all()


def test_grammar_refuses_restated_meta_and_an_ending_without_a_note():
    from musicgen.tokens.stream import Stream

    space = token_space(CFG)
    stream = Stream(space)
    tempo_a, tempo_b = space.tempo.id(3), space.tempo.id(4)
    three_four, four_four = int(space.timesig_id(3, 4)), int(space.timesig_id(4, 4))
    for uid in (BOS, space.inst.id(0), three_four, tempo_a):
        assert stream.allows(uid)
        stream.feed(uid)
    assert not stream.allows(EOS)  # a piece with a line-up ends on a note
    stream.feed(space.shift.id_of_value(12))
    assert not stream.allows(tempo_a) and stream.allows(tempo_b)  # the encoder never restates
    assert not stream.allows(three_four) and stream.allows(four_four)
    assert not stream.allows(EOS)
    for uid in (space.prog.id(0), space.vel.id(5), space.pitch.id_of_value(60)):
        stream.feed(uid)
    stream.feed(space.dur.id_of_value(12))
    assert stream.allows(EOS)
    fresh = Stream(space)
    fresh.feed(BOS)
    assert fresh.allows(EOS)  # the empty piece: `BOS EOS`
