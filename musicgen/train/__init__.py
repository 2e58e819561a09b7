"""`musicgen train`: one Lightning set-up for every core (run.py), sized by budget
(sizing.py)."""

from musicgen.train.run import TrainResult, train

__all__ = ["TrainResult", "train"]
