"""Training throughput of the three cores, and Lightning's overhead, in one run.

    python benchmarks/train.py [--steps 12] [--warm 3] [--batch-size 16] [--seq-len 256] [--json OUT]

For each model: tokens per second of a bare PyTorch loop (forward, loss,
backward, clip, AdamW step) and of the Lightning training loop over the same
model settings and the same batches; the ratio is Lightning's efficiency.
Then peak RSS of training on the corpus and on a ten-times corpus: the token
arrays are memory-mapped, so it should stay flat.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

MODELS = {
    "gru": dict(d_model=256, n_layers=2),
    "gru-attn": dict(d_model=256, n_layers=2),
    "transformer": dict(d_model=192, n_layers=3, n_heads=4),
}


def batches(data: Path, seq_len: int, batch_size: int, n: int):
    from musicgen.config import TrainConfig
    from musicgen.data.datamodule import MusicDataModule

    dm = MusicDataModule(data, TrainConfig(seq_len=seq_len, batch_size=batch_size))
    it = iter(dm.train_dataloader())
    return [next(it) for _ in range(n)], dm


def bare_loop(name: str, vocab: int, bs, seq_len: int, warm: int) -> float:
    import torch.nn.functional as F

    from musicgen.config import ModelConfig
    from musicgen.models import build_core

    torch.manual_seed(0)
    core = build_core(ModelConfig(name=name, vocab_size=vocab, max_len=seq_len, **MODELS[name]))
    opt = torch.optim.AdamW(core.parameters(), lr=1e-3)
    core.train()
    for i, (x, y) in enumerate(bs):
        if i == warm:
            t = time.perf_counter()
        logits, _ = core(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(core.parameters(), 1.0)
        opt.step()
    return (len(bs) - warm) * bs[0][0].numel() / (time.perf_counter() - t)


def lightning_loop(name: str, dm, bs, seq_len: int, warm: int) -> float:
    import lightning as L
    from lightning.pytorch.callbacks import Callback
    from torch.utils.data import DataLoader

    from musicgen.checkpoint import dataset_meta
    from musicgen.config import ModelConfig, TrainConfig
    from musicgen.models.lm import MusicLM

    class Clock(Callback):
        t0 = t1 = 0.0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == warm:
                self.t0 = time.perf_counter()

        def on_train_end(self, trainer, pl_module):
            self.t1 = time.perf_counter()

    torch.manual_seed(0)
    v = dm.vocab  # the tokens the model learns: the dataset's with the controls
    tc = TrainConfig(seq_len=seq_len, batch_size=bs[0][0].size(0), warmup_steps=1)
    lm = MusicLM(
        ModelConfig(name=name, vocab_size=len(v), max_len=seq_len, **MODELS[name]),
        tc,
        v.note_ids.tolist(),
        dataset_meta(v, dm.ds.root),
    )
    clock = Clock()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=len(bs),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[clock],
        gradient_clip_val=1.0,
        num_sanity_val_steps=0,
    )
    trainer.fit(lm, train_dataloaders=DataLoader(bs, batch_size=None))
    return (len(bs) - warm) * bs[0][0].numel() / (clock.t1 - clock.t0)


def peak_rss_training(data: Path, steps: int) -> float:
    code = (
        "import resource\n"
        "from musicgen.train import train\n"
        "from musicgen.config import ModelConfig, TrainConfig\n"
        f"train({str(data)!r}, {str(data / 'run')!r}, ModelConfig(name='gru', d_model=64, n_layers=1),"
        f" TrainConfig(seq_len=128, batch_size=8, max_steps={steps}, epochs=1, steps_per_epoch={steps}), progress_bar=False, logs=False)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--json", type=Path)
    ns = ap.parse_args()
    from ingest import make_big_corpus  # benchmarks/ingest.py

    from musicgen.data.ingest import ingest

    results: dict = {
        "batch_size": ns.batch_size,
        "seq_len": ns.seq_len,
        "threads": torch.get_num_threads(),
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ingest([ROOT / "data" / "midi"], tmp / "ds")
        bs, dm = batches(tmp / "ds", ns.seq_len, ns.batch_size, ns.steps)
        print(
            f"batch {ns.batch_size} x {ns.seq_len} tokens, {ns.steps} steps ({ns.warm} warm-up), {torch.get_num_threads()} threads"
        )
        for name in MODELS:
            bare = bare_loop(name, len(dm.vocab), bs, ns.seq_len, ns.warm)
            light = lightning_loop(name, dm, bs, ns.seq_len, ns.warm)
            results["models"][name] = {
                "bare_tok_s": round(bare),
                "lightning_tok_s": round(light),
                "lightning_over_bare": round(light / bare, 3),
            }
            print(
                f"{name:12s} bare {bare:9,.0f} tok/s   lightning {light:9,.0f} tok/s   lightning/bare {light / bare:.2f}  (target >= 0.90)"
            )
        g = results["models"]
        ratio = g["gru-attn"]["lightning_tok_s"] / g["gru"]["lightning_tok_s"]
        results["gru_attn_over_gru"] = round(ratio, 3)
        print(f"gru-attn / gru throughput: {ratio:.2f}  (target >= 0.5)")
        big = tmp / "big"
        big.mkdir()
        make_big_corpus(ROOT / "data" / "midi", big, 10)
        ingest([big], tmp / "ds10")
        small_rss = peak_rss_training(tmp / "ds", 20)
        big_rss = peak_rss_training(tmp / "ds10", 20)
        results["peak_rss_mib"] = {"corpus": round(small_rss, 1), "10x": round(big_rss, 1)}
        print(
            f"peak RSS training: {small_rss:.0f} MiB on the corpus, {big_rss:.0f} MiB on 10x (memory-mapped: flat)"
        )
    if ns.json:
        ns.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
