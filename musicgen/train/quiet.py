"""Keep the terminal for what a musician needs: Lightning's banners and
known-harmless warnings are hidden; MUSICGEN_DEBUG=1 shows everything."""

from __future__ import annotations

import logging
import os
import warnings

_HARMLESS = (
    r".*exists and is not empty.*",
    r".*LeafSpec.*",
    r".*does not have many workers.*",
    r".*The number of training batches.*is smaller than the logging interval.*",
    r".*`srun` command is available on your system.*",
    # a resume may turn --max-time or --patience off (musicgen/train/resume.py): the Timer's
    # or EarlyStopping's saved state is then not needed, which is all this says
    r".*callbacks used to create the checkpoint need to be provided.*",
)


def quiet_lightning() -> None:
    if os.environ.get("MUSICGEN_DEBUG"):
        return
    for name in (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.fabric.utilities.rank_zero",
        "lightning.pytorch.accelerators.cuda",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in _HARMLESS:
        warnings.filterwarnings("ignore", message=pattern)
