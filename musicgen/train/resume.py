"""`--resume`: where a run goes on from, and with which settings.

A resumed run is the same run. Its settings are the checkpoint's; a setting the caller gives
that differs is either applied and named (`ResumePoint.describe`, one line) or refused in
one line, never ignored. What may change is when the run stops, when it validates and logs,
and how it loads batches: none of it changes what a step learns. Everything else is fixed
once the run has begun:

* the model (family, sizes, dropout, tied embeddings): the weights and the optimizer's
  moments have its shape;
* the windows it draws (--seq-len, --batch-size, --seed, --transpose, --steps-per-epoch,
  --carry-state, --infill, --infill-bars), which is what makes a resumed run train on
  exactly the windows an unbroken run would, and which decide the vocabulary (seams for
  infilling, the mark of a moved piece);
* the optimizer and its schedule (--lr, --warmup, --weight-decay, --grad-clip): the saved
  AdamW moments were made under them, and a new peak or warm-up in the middle of a cosine
  schedule is a new recipe, which a new run started from this one's weights should own (with
  its own history), not a resume;
* the base a fine-tune started from (`init`).

The limits (--epochs, --max-steps, --max-time) may change although the cosine schedule ends
with them: stretching a run that is going well is what people resume for, and the line that
names the change says so. Hardware options (--devices, --precision ...) are not settings of
the run and are used as given, but the number of processes must stay the same: it decides
which windows each one draws.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

from musicgen.checkpoint import read_musicgen_checkpoint
from musicgen.config import ModelConfig, TrainConfig, from_dict
from musicgen.config.fields import flag_of
from musicgen.errors import MusicgenError

# the TrainConfig fields a resume may change (see above)
CHANGEABLE = (
    "epochs",
    "max_steps",
    "max_time",
    "val_every",
    "patience",
    "log_every",
    "num_workers",
)
# ... of which these move the end of the learning-rate schedule
LIMITS = ("epochs", "max_steps", "max_time")
# set from the dataset's vocabulary and from --seq-len (and checked as those), or measured
DERIVED = ("vocab_size", "max_len", "probe_minutes")


@dataclass
class ResumePoint:
    path: Path
    step: int  # the global step the run goes on from
    model: ModelConfig
    train: TrainConfig
    init: dict | None  # the base a fine-tune started from; None: from scratch
    world_size: int
    tokens: list | None  # the vocabulary it learnt
    changes: list[str] = field(default_factory=list)  # "--max-time 20 (was 10)"

    def describe(self) -> str:
        line = f"resuming {self.path} at step {self.step}"
        if self.changes:
            line += " with " + ", ".join(self.changes)
        changed = {c.split()[0] for c in self.changes}
        if changed & {flag_of(_field(TrainConfig, n)) for n in LIMITS}:
            line += "; the learning-rate schedule now ends with the new limit"
        return line

    def check_vocab(self, tokens: list[str], data_dir) -> None:
        """The vocabulary this run would learn is the checkpoint's; a checkpoint from before a
        family of training tokens was added (the key mark, the controls) is named."""
        saved = self.tokens
        if saved == tokens:
            return
        lacks = [t for t in tokens if t not in set(saved or [])]
        if saved and lacks and [t for t in tokens if t not in lacks] == saved:
            what = (
                "marking the pieces it transposes (--transpose 0, or an older musicgen)"
                if "Start_moved" in lacks
                else "control tokens (--controls 0, or an older musicgen)"
            )
            raise MusicgenError(
                f"{self.path} was trained without {what}; train again without --resume"
            )
        raise MusicgenError(f"{self.path} was trained on a different vocabulary than {data_dir}")

    def check_start(self, start: dict) -> None:
        """The model the run's --init names now, if there is one, is the one it began from
        (its weights come from last.ckpt either way; the vocabulary is checked apart)."""
        saved = self.init
        if (
            isinstance(saved, dict)
            and saved.get("sha256")
            and start.get("sha256")
            and saved["sha256"] not in (start["sha256"], start.get("float32_sha256"))
        ):  # the same weights stored again in float16 are the same start
            raise MusicgenError(
                f"{self.path} started from {_base(saved)}, and {_base(start)} is another "
                "model now (a base rebuilt?): a resumed run cannot change where it started; "
                "start a new run with another --out"
            )

    def check_devices(self, world_size: int) -> None:
        if world_size != self.world_size:
            raise MusicgenError(
                f"{self.path} was trained by {self.world_size} processes (--devices x "
                f"--num-nodes) and this run has {world_size}: each one's windows depend on "
                "that number; resume with the same --devices and --num-nodes"
            )


def resume_point(
    last: Path,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data_dir,
    given: Collection[str] | None = None,
) -> ResumePoint:
    """The run saved in `last` and the settings it goes on with: the checkpoint's, but for
    those in `given` (None: every field of both configs), which are applied if they may
    change and refused in one line if not (--init among them: a run keeps its start)."""
    if not last.exists():
        raise MusicgenError(f"nothing to resume: {last} does not exist")
    ckpt = read_musicgen_checkpoint(last)  # refuses pickled code and foreign files
    meta = ckpt["musicgen"]
    saved_model = meta.get("model") if isinstance(meta.get("model"), dict) else {}
    if saved_model.get("name") != model_cfg.name and _chosen("name", given):
        raise MusicgenError(
            f"{last} holds a {saved_model.get('name')!r} model, not {model_cfg.name!r}"
        )
    try:
        model = from_dict(ModelConfig, saved_model)
        train = from_dict(TrainConfig, meta.get("train") or {})
    except (TypeError, ValueError) as exc:
        raise MusicgenError(f"{last}: settings are damaged ({exc})") from None
    refused: list[tuple[str, str]] = []  # (asked, saved)
    changes: list[str] = []
    for cfg, saved in ((model_cfg, model), (train_cfg, train)):
        for f in dataclasses.fields(saved):
            new, old = getattr(cfg, f.name), getattr(saved, f.name)
            if f.name in DERIVED or not _chosen(f.name, given) or new == old:
                continue
            if isinstance(saved, TrainConfig) and f.name in CHANGEABLE:
                train = replace(train, **{f.name: new})
                changes.append(f"{_spelled(f, new)} (was {_was(f, old, ckpt)})")
            else:
                refused.append((_spelled(f, new), _spelled(f, old)))
    if refused:
        raise MusicgenError(
            f"cannot resume {last} with {', '.join(a for a, _ in refused)}: the run was "
            f"trained with {', '.join(s for _, s in refused)}, and a resumed run keeps its "
            "model, the windows it draws and its learning-rate schedule (a resume may change "
            + ", ".join(flag_of(_field(TrainConfig, n)) for n in CHANGEABLE)
            + f"); drop {'it' if len(refused) == 1 else 'them'}, or start a new run with another --out"
        )
    saved_init = meta.get("init")
    data = str(Path(data_dir).resolve())
    if meta.get("data") and meta["data"] != data:  # a moved dataset, or another one
        changes.append(f"--data {data_dir} (was {meta['data']})")
    return ResumePoint(
        last,
        int(ckpt.get("global_step", meta.get("global_step", 0))),
        model,
        train,
        saved_init,
        int(meta.get("world_size", 1)),
        (meta.get("vocab") or {}).get("tokens"),
        changes,
    )


def _was(f: dataclasses.Field, old, ckpt: dict) -> str:
    """What a changed setting was: `10`, `none`, `10; 9.6 min of it trained`."""
    if f.name in LIMITS and old in (0, -1):
        return "no limit"
    if f.name == "max_time":
        # Lightning restores the Timer's count: --max-time is the budget of the whole run
        return f"{old:g}; {_trained_minutes(ckpt):.1f} min of it trained"
    return _spelled(f, old).split(" ", 1)[-1]


def _trained_minutes(ckpt: dict) -> float:
    """Training time the run's Timer had counted when the checkpoint was written."""
    for key, state in (ckpt.get("callbacks") or {}).items():
        if str(key).startswith("Timer") and isinstance(state, dict):
            return float((state.get("time_elapsed") or {}).get("train", 0.0)) / 60
    return 0.0


def _chosen(name: str, given: Collection[str] | None) -> bool:
    return given is None or name in given


def _field(cls, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def _spelled(f: dataclasses.Field, value) -> str:
    """The setting as it is written on the command line: `--hidden 256`, `--no-carry-state`."""
    flag = flag_of(f)
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    return f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}"


def _base(init: dict | None) -> str:
    if not init:
        return "scratch"
    return str(init.get("path") or init) if isinstance(init, dict) else str(init)
