"""Generation speed: the state cache, an idle machine against a busy one, threads, form.

    python benchmarks/generate.py [--context 512] [--new 256] [--threads 1,2] [--form-tokens 1000]

For each model (random weights; speed does not depend on them) with a training
context of `--context` tokens, from a prompt that fills the context:

* cached tokens per second, batch 1, as `musicgen generate` decodes (on
  `DECODE_THREADS` threads), with the machine as it is ("idle") and with one core
  kept busy by another process this script starts and stops (`busy_core`: matrix
  products on one thread, as a training run beside it); busy / idle should stay
  above 0.5;
* tokens per second re-running the whole context every step (no cache), and the
  cache's speed-up over it;
* the time to generate 1,000 notes with the cache, through `generate_songs`;
* the same cached speed on each of `--threads` torch threads, idle and busy: the
  measurement behind `DECODE_THREADS`.

Then, for each shipped model that learnt its corpus's form, `--form-tokens` tokens
with `--no-cache`, form-aware sampling on (the default bias) against off: its pulls
must cost about the same at every length, so the ratio should stay near 1 (< 1.5).

Every figure is the best of `--rounds` rounds, idle and busy alternating, so the
ratios compare measurements taken within seconds of each other (the machine may be
shared).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from train import MODELS  # noqa: E402  (same sizes as the training benchmark)

# One core's worth of training-like work: matrix products on one torch thread, forever.
SPIN = """
import sys, torch
torch.set_num_threads(1)
a = torch.randn(256, 256)
print("ready", flush=True)
while True:
    a = torch.tanh(a @ a)
"""


@contextmanager
def busy_core():
    """Another process keeping one core busy while inside; stopped after. It runs in a
    session of its own, as a training run started from another terminal does (Linux
    shares the CPU between sessions first, then between a session's processes)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        proc.stdout.readline()  # it has imported torch and is spinning
        time.sleep(0.2)
        yield
    finally:
        proc.kill()
        proc.wait()


def tokens_per_second(
    core,
    prompt: torch.Tensor,
    new: int,
    use_cache: bool,
    vocab,
    context: int,
    threads: int | None,
) -> float:
    """Decoding speed with the grammar mask on, as `generate_songs` runs it."""
    from musicgen.generate import GenerateConfig
    from musicgen.generate.decoder import Sampling, decode
    from musicgen.generate.length import LengthTracker

    def run(n: int, seed: int) -> float:
        rules = LengthTracker(
            vocab, GenerateConfig(unit="tokens", length=n), prompt[0].numpy(), prompt.size(0)
        )
        t = time.perf_counter()
        out = decode(
            core,
            prompt,
            n,
            sampling=Sampling(1.0, 0, 0.98),
            generator=torch.Generator().manual_seed(seed),
            rules=rules,
            use_cache=use_cache,
            context_len=context,
            threads=threads,
        )
        dt = time.perf_counter() - t
        assert out.size(1) == prompt.size(1) + n
        return n / dt

    # warm-up with the very same call: first-call set-up (allocator, kernels) is not decoding
    run(16, 1)
    return run(new, 0)


def idle_and_busy(measure, rounds: int) -> tuple[float, float]:
    """Best of `rounds` of `measure()` (higher is better) idle, and with a core kept busy."""
    idle, busy = [], []
    for _ in range(rounds):
        idle.append(measure())
        with busy_core():
            busy.append(measure())
    return max(idle), max(busy)


def thousand_notes(model) -> tuple[float, int]:
    from musicgen.generate import GenerateConfig, generate_songs

    generate_songs(model, GenerateConfig(unit="notes", length=10, seed=1))  # warm-up
    t = time.perf_counter()
    songs, _ = generate_songs(model, GenerateConfig(unit="notes", length=1000, seed=0))
    return time.perf_counter() - t, songs[0].new_notes


def form_cost(path: Path, tokens: int) -> tuple[float, float] | None:
    """Seconds for `tokens` shipped-model tokens with --no-cache, form bias on and off."""
    from musicgen.checkpoint import load_model
    from musicgen.generate import GenerateConfig, generate_songs

    model = load_model(path)
    if model.meta.get("form") is None:
        return None
    out = []
    for bias in (None, 0.0):  # None: the default for a model that learnt form
        cfg = GenerateConfig(unit="tokens", length=tokens, seed=0, use_cache=False, form_bias=bias)
        t = time.perf_counter()
        generate_songs(model, cfg)
        out.append(time.perf_counter() - t)
    return out[0], out[1]


def prompt_and_vocab(context: int):
    """A real piece's start for the prompt, and a vocabulary of the corpus's first files."""
    from musicgen.config import EncodingConfig
    from musicgen.data.files import ingest_file
    from musicgen.tokens.vocab import Vocabulary

    enc = EncodingConfig(time="beats")
    files = sorted((ROOT / "data" / "midi").glob("*.mid"))[:60]
    pieces = [ingest_file(f, enc).uids for f in files]
    vocab = Vocabulary(enc, np.unique(np.concatenate(pieces)))
    first = next(p for p in pieces if len(p) > context)
    ids, _ = vocab.from_universal(first[:context])  # the start of one piece: grammatical
    return torch.from_numpy(ids.astype(np.int64))[None], vocab  # (1, context)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--threads", default="1,2", help="thread counts to compare, e.g. 1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--form-tokens", type=int, default=1000, help="0 skips the form part")
    ap.add_argument("--json", type=Path)
    ns = ap.parse_args()

    from musicgen.checkpoint import LoadedModel
    from musicgen.config import ModelConfig
    from musicgen.generate.decoder import DECODE_THREADS
    from musicgen.models import build_core

    prompt, vocab = prompt_and_vocab(ns.context)
    thread_counts = [int(t) for t in ns.threads.split(",") if t]
    torch.manual_seed(0)
    results: dict = {
        "context": ns.context,
        "new_tokens": ns.new,
        "decode_threads": DECODE_THREADS,
        "torch_threads": torch.get_num_threads(),
        "models": {},
    }
    print(
        f"prompt {ns.context} tokens, {ns.new} new tokens, batch 1; decoding on {DECODE_THREADS} "
        f"thread(s) (torch's default here: {torch.get_num_threads()}); busy = one core spun by "
        f"another process; best of {ns.rounds}"
    )
    print(
        f"{'model':12s} {'cached idle':>12s} {'cached busy':>12s} {'busy/idle':>9s} "
        f"{'no cache':>9s} {'speed-up':>8s} {'1,000 notes':>11s}"
    )
    by_threads: dict = {}
    for name, size in MODELS.items():
        cfg = ModelConfig(name=name, vocab_size=len(vocab), max_len=ns.context, **size)
        core = build_core(cfg).eval()

        def cached(threads: int | None = DECODE_THREADS, core=core) -> float:
            return tokens_per_second(core, prompt, ns.new, True, vocab, ns.context, threads)

        idle, busy = idle_and_busy(cached, ns.rounds)
        full = max(
            tokens_per_second(
                core, prompt, max(ns.new // 8, 8), False, vocab, ns.context, DECODE_THREADS
            )
            for _ in range(ns.rounds)
        )
        secs, notes = thousand_notes(LoadedModel(core, cfg, vocab, {}, Path("random")))
        results["models"][name] = {
            "cached_tok_s": round(idle, 1),
            "cached_busy_tok_s": round(busy, 1),
            "busy_over_idle": round(busy / idle, 2),
            "no_cache_tok_s": round(full, 1),
            "speedup": round(idle / full, 1),
            "seconds_for_1000_notes": round(secs, 2),
        }
        print(
            f"{name:12s} {idle:8.0f} tok/s {busy:6.0f} tok/s {busy / idle:8.2f}x "
            f"{full:5.1f} tok/s {idle / full:7.1f}x {secs:7.2f} s ({notes} notes)"
        )
        for n in thread_counts:
            by_threads[name, n] = idle_and_busy(lambda n=n, f=cached: f(n), ns.rounds)

    if thread_counts:
        print("\ncached tok/s by torch threads while decoding (idle / busy, busy/idle)")
        print(f"{'model':12s} " + " ".join(f"{f'{n} thread(s)':>26s}" for n in thread_counts))
        for name in MODELS:
            cells = []
            for n in thread_counts:
                idle, busy = by_threads[name, n]
                cells.append(f"{idle:7.0f} / {busy:6.0f}  {busy / idle:5.2f}x")
                results["models"][name][f"threads_{n}"] = {
                    "idle_tok_s": round(idle, 1),
                    "busy_tok_s": round(busy, 1),
                }
            print(f"{name:12s} " + " ".join(f"{c:>26s}" for c in cells))

    if ns.form_tokens:
        print(f"\n--no-cache, {ns.form_tokens} tokens of each shipped model, form bias on / off")
        results["form"] = {}
        from musicgen.pretrained import pretrained_models

        for name, path in pretrained_models().items():
            cost = form_cost(path, ns.form_tokens)
            if cost is None:
                continue
            on, off = cost
            results["form"][name] = {"form_s": round(on, 2), "no_form_s": round(off, 2)}
            print(f"{name:12s} {on:7.1f} s / {off:7.1f} s = {on / off:.2f}x")
    if ns.json:
        ns.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
