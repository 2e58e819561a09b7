"""One dataclass per concern. Each is saved as JSON inside the outputs it shapes
(vocabulary, checkpoint, sidecar) so a file rebuilds its own settings."""

from musicgen.config.encoding import DRUMS, TIME_MODES, EncodingConfig
from musicgen.config.fields import command_args, field, from_dict, opt, to_dict
from musicgen.config.generation import (
    CONTROL_OPTIONS,
    CONTROLS,
    FORM_BIAS,
    LENGTH_UNITS,
    PASSAGE_SAMPLING,
    SAMPLING,
    AccompanyConfig,
    GenerateConfig,
    InfillConfig,
)
from musicgen.config.live import PLAY_MODES, LiveConfig
from musicgen.config.training import (
    MODEL_NAMES,
    HardwareConfig,
    IngestConfig,
    ModelConfig,
    TrainConfig,
)

__all__ = [
    "LiveConfig",
    "PLAY_MODES",
    "CONTROLS",
    "CONTROL_OPTIONS",
    "DRUMS",
    "PASSAGE_SAMPLING",
    "SAMPLING",
    "command_args",
    "AccompanyConfig",
    "InfillConfig",
    "EncodingConfig",
    "TIME_MODES",
    "IngestConfig",
    "ModelConfig",
    "TrainConfig",
    "FORM_BIAS",
    "GenerateConfig",
    "HardwareConfig",
    "LENGTH_UNITS",
    "MODEL_NAMES",
    "to_dict",
    "from_dict",
    "field",
    "opt",
]
