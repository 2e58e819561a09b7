"""Errors the CLI turns into one-line messages and exit code 2."""


class MusicgenError(Exception):
    """A user-facing failure: bad input, a foreign file, an unwritable folder."""


class ReadError(MusicgenError):
    """A file could not be read as music; the message is the one-line reason."""


class CheckpointError(MusicgenError):
    """A checkpoint is missing, foreign, unsafe or does not match its vocabulary."""
