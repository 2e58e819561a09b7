"""Generation speed with and without the state cache, in one run.

    python benchmarks/generate.py [--context 512] [--new 256]

For each model (random weights; speed does not depend on them) with a
training context of `--context` tokens: tokens per second when decoding step
by step with the carried state (GRU hidden state, attention memory, transformer
key/value cache) against re-running the whole context every step, starting
from a prompt that fills the context. Then the time to generate 1,000 notes
with the cache, through the same code path as `musicgen generate`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from train import MODELS  # noqa: E402  (same sizes as the training benchmark)


def tokens_per_second(
    core, prompt: torch.Tensor, new: int, use_cache: bool, vocab, context: int
) -> float:
    """Decoding speed with the grammar mask on, as `generate_songs` runs it."""
    from musicgen.generate import GenerateConfig
    from musicgen.generate.length import LengthTracker
    from musicgen.generate.sampling import generate

    def rules(n: int) -> LengthTracker:
        return LengthTracker(vocab, GenerateConfig(unit="tokens", length=n), prompt[0].numpy(), 1)

    # warm-up with the very same call: first-call set-up (allocator, kernels) is not decoding
    generate(
        core,
        prompt,
        16,
        temperature=1.0,
        top_p=0.95,
        generator=torch.Generator().manual_seed(1),
        rules=rules(16),
        use_cache=use_cache,
        context_len=context,
    )
    g = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    out = generate(
        core,
        prompt,
        new,
        temperature=1.0,
        top_p=0.95,
        generator=g,
        rules=rules(new),
        use_cache=use_cache,
        context_len=context,
    )
    dt = time.perf_counter() - t
    assert out.size(1) == prompt.size(1) + new
    return new / dt


def thousand_notes(model) -> tuple[float, int]:
    from musicgen.generate import GenerateConfig, generate_songs

    generate_songs(model, GenerateConfig(unit="notes", length=10, seed=1))  # warm-up
    t = time.perf_counter()
    songs, _ = generate_songs(model, GenerateConfig(unit="notes", length=1000, seed=0))
    return time.perf_counter() - t, songs[0].new_notes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--json", type=Path)
    ns = ap.parse_args()

    from musicgen.checkpoint import LoadedModel
    from musicgen.config import EncodingConfig, ModelConfig
    from musicgen.data.files import ingest_file
    from musicgen.models import build_core
    from musicgen.tokens.vocab import Vocabulary

    # A real piece for the prompt and a vocabulary built from the corpus' first files.
    enc = EncodingConfig(time="beats")
    files = sorted((ROOT / "data" / "midi").glob("*.mid"))[:60]
    pieces = [ingest_file(f, enc).uids for f in files]
    vocab = Vocabulary(enc, np.unique(np.concatenate(pieces)))
    first = next(p for p in pieces if len(p) > ns.context)
    ids, _ = vocab.from_universal(
        first[: ns.context]
    )  # the start of one piece: a grammatical prompt
    prompt = torch.from_numpy(ids.astype(np.int64))[None]  # (1, context)
    torch.manual_seed(0)
    results: dict = {
        "context": ns.context,
        "new_tokens": ns.new,
        "threads": torch.get_num_threads(),
        "models": {},
    }
    print(
        f"prompt {ns.context} tokens, {ns.new} new tokens, batch 1, {torch.get_num_threads()} threads"
    )
    for name, size in MODELS.items():
        cfg = ModelConfig(name=name, vocab_size=len(vocab), max_len=ns.context, **size)
        core = build_core(cfg).eval()
        cached = tokens_per_second(core, prompt, ns.new, True, vocab, ns.context)
        full = tokens_per_second(core, prompt, max(ns.new // 8, 8), False, vocab, ns.context)
        model = LoadedModel(core, cfg, vocab, {}, Path("random"))
        secs, notes = thousand_notes(model)
        results["models"][name] = {
            "cached_tok_s": round(cached, 1),
            "no_cache_tok_s": round(full, 1),
            "speedup": round(cached / full, 1),
            "seconds_for_1000_notes": round(secs, 2),
        }
        print(
            f"{name:12s} cached {cached:8.0f} tok/s   no cache {full:7.1f} tok/s   speed-up {cached / full:6.1f}x   1,000 notes in {secs:.2f} s ({notes} notes)"
        )
    if ns.json:
        ns.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
