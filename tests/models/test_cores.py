"""Shared contract of the three cores: causal, cache == full forward (also past the
window), chunked feeding, shapes, bounded state, tying, gradients, and learning."""

from __future__ import annotations

import pytest
import torch

from musicgen.config import MODEL_NAMES, ModelConfig
from musicgen.models import CORES, build_core

V = 50


def make(name: str, **kw) -> torch.nn.Module:
    base = dict(name=name, vocab_size=V, d_model=32, n_layers=2, n_heads=4, dropout=0.1)
    torch.manual_seed(0)
    return build_core(ModelConfig(**{**base, **kw})).eval()


def tokens(b: int, t: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, (b, t), generator=torch.Generator().manual_seed(seed))


def feed(model, x: torch.Tensor, sizes: list[int]) -> tuple[torch.Tensor, object]:
    """Logits for x fed in consecutive chunks of the given sizes, carrying the state."""
    assert sum(sizes) == x.size(1)
    out, state, i = [], None, 0
    for n in sizes:
        logits, state = model(x[:, i : i + n], state)
        out.append(logits)
        i += n
    return torch.cat(out, dim=1), state


def state_lengths(name: str, state) -> list[int]:
    """Batch size and number of remembered steps of every tensor in a state."""
    if name == "gru":
        return [state.size(1)]
    if name == "gru-attn":
        h, memory = state
        return [h.size(1), memory.size(0)]
    return [t.size(0) for kv in state["kv"] for t in kv]


# (max_len, attn_window, length): inside the training window, and well past it.
WINDOWS = [(32, 0, 24), (8, 0, 20), (32, 8, 20)]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_name_builds_a_core_with_the_one_interface(name):
    model = make(name)
    assert type(model) is CORES[name]
    # the name picks the architecture it says, checked on the modules the core is made of
    grus = [m for m in model.modules() if isinstance(m, torch.nn.GRU)]
    # attention: a transformer's attention blocks, or the attention GRU's scoring layer
    names = {n.split(".")[-1] for n, _ in model.named_modules()}
    attends = bool(names & {"attn", "score"})
    assert (len(grus) > 0, attends) == {
        "gru": (True, False),
        "gru-attn": (True, True),
        "transformer": (False, True),
    }[name]
    assert CORES[name].recurrent == (name != "transformer")
    x = torch.randint(0, model.cfg.vocab_size, (2, 5))
    logits, state = model(x)
    assert logits.shape == (2, 5, model.cfg.vocab_size)
    more, _ = model(x[:, :1], state)  # a state it can go on from
    assert more.shape == (2, 1, model.cfg.vocab_size)
    with pytest.raises(ValueError, match="unknown model 'lstm'"):
        ModelConfig(name="lstm")


def test_build_core_needs_vocab():
    with pytest.raises(ValueError):
        build_core(ModelConfig(name="gru", vocab_size=0))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shapes_and_state_batch(name):
    model = make(name)
    logits, state = model(tokens(3, 10))
    assert logits.shape == (3, 10, V)
    assert all(n == 3 for n in state_lengths(name, state))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_causal(name):
    model = make(name, max_len=32)
    x = tokens(2, 24)
    j = 10
    y = x.clone()
    y[:, j] = (y[:, j] + 1) % V
    with torch.no_grad():
        a, _ = model(x)
        b, _ = model(y)
    torch.testing.assert_close(a[:, :j], b[:, :j], atol=1e-5, rtol=0)
    assert ((a[:, j:] - b[:, j:]).abs().amax(-1) > 1e-6).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("max_len,window,length", WINDOWS)
def test_step_by_step_equals_full(name, max_len, window, length):
    model = make(name, max_len=max_len, attn_window=window)
    x = tokens(2, length)
    with torch.no_grad():
        full, _ = model(x)
        steps, _ = feed(model, x, [1] * length)
    torch.testing.assert_close(steps, full, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("max_len,window,length", WINDOWS)
def test_chunked_equals_full(name, max_len, window, length):
    model = make(name, max_len=max_len, attn_window=window)
    x = tokens(2, length, seed=2)
    sizes = [7, 1, 1, 1, 4]
    sizes.append(length - sum(sizes))  # a last chunk that crosses the window when short
    with torch.no_grad():
        full, _ = model(x)
        chunked, _ = feed(model, x, sizes)
    torch.testing.assert_close(chunked, full, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["gru-attn", "transformer"])
def test_state_stays_bounded(name):
    model = make(name, max_len=8)
    with torch.no_grad():
        _, state = feed(model, tokens(2, 30), [7] + [1] * 23)
    if name == "gru-attn":
        assert state[1].shape == (2, 7, 32)
    else:
        assert state["pos"] == 30
        assert all(k.shape == (2, 4, 7, 8) == v.shape for k, v in state["kv"])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_batch_rows_are_independent(name):
    model = make(name, max_len=8)
    x = tokens(3, 12)
    with torch.no_grad():
        both, _ = feed(model, x, [5, 1, 6])
        alone, _ = feed(model, x[1:2], [5, 1, 6])
    torch.testing.assert_close(both[1:2], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("tie", [True, False])
def test_weight_tying(name, tie):
    model = make(name, tie_embeddings=tie)
    assert (model.head.weight is model.emb.weight) == tie


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_training_backward(name):
    model = make(name).train()
    x = tokens(4, 17)
    logits, _ = model(x[:, :-1])
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), x[:, 1:].reshape(-1))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_training_forward_has_no_time_loop(name):
    """A T=64 forward runs the GRU (or each attention layer) once, not per step."""
    model = make(name, max_len=64).train()
    calls = []
    layers = [model.rnn] if name != "transformer" else [b.attn for b in model.blocks]
    for layer in layers:
        layer.register_forward_hook(lambda *_: calls.append(1))
    model(tokens(2, 64))
    assert len(calls) == len(layers)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_overfits_repeating_sequence(name):
    model = make(name, dropout=0.0, max_len=64).train()
    seq = torch.tensor([[1, 2, 3, 4, 5] * 10] * 4)  # (4, 50)
    # No warmup here, and 1e-2 can stall a tied transformer at ln(5).
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(100):
        logits, _ = model(seq[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), seq[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_restarted_row_forgets_what_came_before(name):
    """restart_rows: a row marked fresh gives what a core with no state gives; the others go on."""
    torch.manual_seed(0)
    core = build_core(
        ModelConfig(
            name=name, vocab_size=20, d_model=16, n_layers=2, n_heads=2, dropout=0.0, max_len=8
        )
    ).eval()
    a = torch.randint(0, 20, (3, 8))
    b = torch.randint(0, 20, (3, 8))
    with torch.no_grad():
        _, state = core(a)
        fresh = torch.tensor([True, False, True])
        got, _ = core(b, core.restart_rows(state, fresh))
        alone, _ = core(b)  # no state at all
        carried, _ = core(b, state)
    assert torch.allclose(got[fresh], alone[fresh], atol=1e-5)
    assert torch.allclose(got[~fresh], carried[~fresh], atol=1e-5)
    assert not torch.allclose(got[~fresh], alone[~fresh], atol=1e-3)
