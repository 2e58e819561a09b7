"""Measures of a token dataset's pieces: decoded to scores, then measured by
musicgen/analysis (which knows nothing of tokens)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from musicgen.analysis.form import FormPrior, learn_form
from musicgen.tokens.encoding import decode


def learn_form_of(docs: Iterable[np.ndarray], vocab) -> FormPrior:
    """The form of a dataset's pieces (compact ids of `vocab`), as `train` stores it."""
    return learn_form(decode(vocab.to_universal(d), vocab.cfg)[0] for d in docs)
