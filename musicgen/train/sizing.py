"""Sizing by budget: `musicgen train --max-time M` without size flags picks the model.

The rule, for the device the run will use: try the sizes of a ladder from small
to large, timing a few optimizer steps of each on real training windows, and keep
the largest whose time budget still buys `MIN_STEPS` steps (fewer steps than that
and a bigger model ends a short run less trained than a smaller one: on this
project's 2-core CPU five minutes buy a small model, a GPU hour a large one).
The transformer's context is the length of the corpus's pieces (their 90th
percentile, as a power of two between 256 and 2048): long enough to hold a whole
strain and its repeat. The recurrent cores read whole pieces whatever their
window (truncated back-propagation through time), so theirs stays 256.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from musicgen.config import ModelConfig, TrainConfig
from musicgen.data.dataset import TokenDataset
from musicgen.models.registry import CORES, build_core

MIN_STEPS = 1200
# (d_model, n_layers, n_heads) from small to large
LADDER = {
    "gru": [
        (192, 2, 1),
        (256, 2, 1),
        (320, 2, 1),
        (384, 3, 1),
        (512, 3, 1),
        (768, 3, 1),
        (1024, 4, 1),
    ],
    "transformer": [(128, 3, 4), (192, 4, 4), (256, 4, 4), (384, 6, 6), (512, 8, 8), (768, 12, 12)],
}
LADDER["gru-attn"] = LADDER["gru"]
RECURRENT_WINDOW = 256
TRANSFORMER_BATCH_TOKENS = 16 * 1024  # a batch holds about this many tokens
MIN_BATCH = 8
LARGER_BATCH_GAIN = 1.5  # the most a larger batch is taken to save per token (a margin)


@dataclass
class Sizing:
    model: ModelConfig
    train: TrainConfig
    step_seconds: float
    expected_steps: int

    def describe(self, minutes: float, device: str) -> str:
        m, t = self.model, self.train
        params = _parameters(m)
        heads = f", {m.n_heads} heads" if m.name == "transformer" else ""
        return (
            f"sized for {minutes:g} min on {device}: {m.name} {m.d_model} wide, {m.n_layers} layers{heads}, "
            f"context {t.seq_len}, batch {t.batch_size} ({params / 1e6:.2f} M parameters; a step took "
            f"{self.step_seconds:.2f} s, so about {self.expected_steps:,} steps)"
        )


def _parameters(cfg: ModelConfig) -> int:
    return sum(p.numel() for p in build_core(cfg).parameters())


def context_for(ds: TokenDataset) -> int:
    lengths = [e["tokens"] for e in ds.index["files"] if e["split"] == "train"]
    p90 = float(np.percentile(lengths, 90)) if lengths else 256.0
    return int(min(2048, max(256, 2 ** math.ceil(math.log2(max(p90, 1))))))


def step_time(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    tokens: np.ndarray,
    device: torch.device,
    steps: int = 3,
    precision: str = "32-true",
) -> float:
    """Seconds per optimizer step (forward, backward, AdamW) on windows of the training tokens."""
    core = build_core(model_cfg).to(device).train()
    opt = torch.optim.AdamW(core.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    T, B = train_cfg.seq_len, train_cfg.batch_size
    # the precision the run will train in (Lightning's names)
    # (bf16-mixed, bf16-true, bf16; 16-mixed, 16-true, 16: half precision timed as autocast)
    name = str(precision)
    half = (
        torch.bfloat16
        if name.startswith("bf16")
        else torch.float16
        if name.startswith("16")
        else None
    )
    autocast = torch.autocast(device.type, dtype=half, enabled=half is not None)

    def one() -> None:
        off = rng.integers(0, max(len(tokens) - T - 1, 1), B)
        w = torch.from_numpy(
            np.stack([np.asarray(tokens[o : o + T + 1], dtype=np.int64) for o in off])
        ).to(device)
        with autocast:
            logits, _ = core(w[:, :-1])
            loss = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)).float(), w[:, 1:].reshape(-1)
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    one()  # the first step allocates
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def size_for_budget(
    data_dir,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    device: torch.device,
    precision: str = "32-true",
) -> Sizing:
    """The largest rung of the ladder whose step time leaves MIN_STEPS steps in
    train_cfg.max_time; for the transformer the longest context (from the corpus's
    length down to 256), then the largest batch, at which even the smallest rung does."""
    ds = TokenDataset.open(data_dir)
    tokens = ds.split_tokens("train")
    budget = train_cfg.max_time * 60.0
    ladder = LADDER[model_cfg.name]

    def probe(rung: tuple[int, int, int], seq_len: int, batch: int) -> Sizing:
        d, layers, heads = rung
        m = replace(
            model_cfg,
            d_model=d,
            n_layers=layers,
            n_heads=heads,
            vocab_size=len(ds.vocab),
            max_len=seq_len,
        )
        t = replace(train_cfg, seq_len=seq_len, batch_size=batch)
        seconds = step_time(m, t, tokens, device, precision=precision)
        return Sizing(m, t, seconds, int(budget / seconds))

    if CORES[model_cfg.name].recurrent:
        shapes = [(RECURRENT_WINDOW, train_cfg.batch_size)]
    else:
        longest = min(context_for(ds), max(len(tokens) - 1, 2))
        contexts = [c for c in (2048, 1024, 512, 256) if c <= longest] or [longest]
        shapes = [(c, max(1, TRANSFORMER_BATCH_TOKENS // c)) for c in contexts]
        # a budget too short even for the shortest context: smaller batches, more steps
        # (the 5-minute CPU runs of 16 x 256 learn far more than 365 steps of 64 x 256)
        shortest, batch = shapes[-1]
        while batch > MIN_BATCH:
            batch //= 2
            shapes.append((shortest, batch))
    # The cheapest shape is timed first: every other one costs at least its share of tokens
    # more (a longer window more per token, a larger batch hardly less), so a shape that
    # could not reach MIN_STEPS even so is not timed. Timing each in turn took 2.3 of a
    # 5-minute CPU budget (the folk benchmark's transformer), all of it lost to training.
    cheapest = probe(ladder[0], *shapes[-1])
    per_token = cheapest.step_seconds / (shapes[-1][0] * shapes[-1][1])
    for seq_len, batch in shapes[:-1]:
        if budget / (per_token * seq_len * batch) * LARGER_BATCH_GAIN < MIN_STEPS:
            continue
        best = probe(ladder[0], seq_len, batch)
        if best.expected_steps >= MIN_STEPS:
            break
    else:
        best = cheapest
    for rung in ladder[1:]:
        bigger = probe(rung, best.train.seq_len, best.train.batch_size)
        if bigger.expected_steps < MIN_STEPS:
            break
        best = bigger
    return best
