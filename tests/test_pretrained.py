"""Export to safetensors from the CLI, and the pretrained default for `generate`."""

import json

from musicgen.checkpoint import load_model
from musicgen.pretrained import DEFAULT_ORDER, default_checkpoint, pretrained_models
from tests.helpers import assert_cli_error, assert_ok, run_cli


def test_export_cli_writes_a_loadable_folder(trained, tmp_path):
    out = tmp_path / "exported"
    result = run_cli("export", str(trained["gru"].best), "--out", str(out))
    assert_ok(result)
    assert (out / "model.safetensors").read_bytes()[:8] != b"PK\x03\x04"  # not a torch zip/pickle
    meta = json.loads((out / "musicgen.json").read_text())
    assert meta["model"]["name"] == "gru" and meta["vocab"]["tokens"][:3] == ["PAD", "BOS", "EOS"]
    assert load_model(out).model_cfg.name == "gru"


def test_generate_without_checkpoint_uses_the_pretrained_default(trained, tmp_path, monkeypatch):
    root = tmp_path / "pretrained"
    for name in ("gru", "transformer"):
        assert_ok(run_cli("export", str(trained[name].best), "--out", str(root / name)))
    monkeypatch.setenv("MUSICGEN_PRETRAINED", str(root))
    assert list(pretrained_models()) == [n for n in DEFAULT_ORDER if n in ("gru", "transformer")]
    assert default_checkpoint() == root / "gru"  # gru-attn, the first choice, is not there
    song = tmp_path / "song.mid"
    result = run_cli("generate", "--out", str(song), "--notes", "20", "--seed", "3")
    assert_ok(result)
    assert f"using the pretrained default {root / 'gru'}" in result.output
    sidecar = json.loads(song.with_suffix(".json").read_text())
    assert sidecar["model"] == "gru" and sidecar["new_notes"] == 20


def test_generate_without_checkpoint_or_pretrained_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICGEN_PRETRAINED", str(tmp_path / "none"))
    result = run_cli("generate", "--out", str(tmp_path / "s.mid"))
    assert_cli_error(result, "no pretrained model found")


def test_the_shipped_models_can_fill():
    """`musicgen infill` with no checkpoint uses a shipped model: each is trained to fill."""
    from musicgen.pretrained import pretrained_models

    models = pretrained_models()
    assert set(models) == {"gru", "gru-attn", "transformer"}
    for path in models.values():
        assert load_model(path).vocab.can_fill, path
