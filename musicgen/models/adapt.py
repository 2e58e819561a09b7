"""Which of a starting point's weights a fine-tune may change (`--freeze`).

    none        every weight trains (the default: on 100 folk tunes for 5 minutes the
                gru read 2.613 bits/note, 2.619 with the embedding kept and 2.713 with
                the lower layers; the transformer 2.828, and 3.024 with its lower layers
                kept, in 300 steps against 291: docs/results.md)
    embedding   the token embedding (and the output layer tied to it) stays as the base
                learnt it: what each token means is kept, the core adapts to the corpus
    lower       the embedding and the lower half of the layers stay: only the upper
                layers (and what sits above them) adapt

Frozen weights are simply not trained (requires_grad off, left out of the optimizer), so
a checkpoint stays a plain core whatever was frozen. Low-rank adapters (LoRA) save memory
in models of billions of weights; at these sizes a full fine-tune costs about what LoRA
would on a CPU (every forward and backward pass still runs through the frozen weights), so
they are not built.
"""

from __future__ import annotations

import re

from torch import nn

from musicgen.config.training import FREEZE


def frozen_names(core: nn.Module, n_layers: int, what: str) -> list[str]:
    """The names of the parameters `what` keeps as they are."""
    if what not in FREEZE:
        raise ValueError(f"freeze must be one of {', '.join(FREEZE)}, got {what!r}")
    if what == "none":
        return []
    lower = n_layers // 2 if what == "lower" else 0
    names = []
    for name, _ in core.named_parameters():
        if name.startswith("emb."):
            names.append(name)
            continue
        # a transformer's block k (blocks.k.*) or a GRU's layer k (rnn.weight_ih_lk ...)
        m = re.match(r"blocks\.(\d+)\.", name) or re.match(r"rnn\.\w+_l(\d+)", name)
        if m and int(m.group(1)) < lower:
            names.append(name)
    return names


def freeze(core: nn.Module, n_layers: int, what: str) -> list[str]:
    """Turn training off for what `what` keeps; the names frozen."""
    names = frozen_names(core, n_layers, what)
    params = dict(core.named_parameters())
    for name in names:
        params[name].requires_grad_(False)
    return names
