"""`musicgen train`: one Lightning Trainer set-up for every core."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only

from musicgen.checkpoint import dataset_meta, read_checkpoint_dict
from musicgen.config import HardwareConfig, ModelConfig, TrainConfig
from musicgen.data.datamodule import MusicDataModule
from musicgen.data.measures import corpus_profile, learn_form_of
from musicgen.errors import MusicgenError
from musicgen.fsutil import folder_lock, remove_stale_temps
from musicgen.models.lm import MusicLM
from musicgen.models.registry import CORES
from musicgen.train.callbacks import AtomicCheckpointIO, SaveLast, SaveOnInterrupt, ScoreTheStart
from musicgen.train.history import LogStepIsGlobalStep, loggers
from musicgen.train.init import Start, initial_weights, resolve_init
from musicgen.train.quiet import quiet_lightning
from musicgen.train.resume import ResumePoint, resume_point


@dataclass
class TrainResult:
    out: Path
    best: Path | None
    last: Path | None
    best_val_bpn: float
    steps: int
    seconds: float
    interrupted: bool
    is_global_zero: bool = True  # False in the other processes of a multi-device run
    val_is_held_out: bool = True  # False: the dataset has no validation files (see MusicDataModule)
    model: str = ""  # the core trained (on resume, the checkpoint's)
    start_bpn: float | None = None  # a fine-tune's validation bits/note before its first step


def _val_schedule(val_every: float) -> tuple[int | float | None, int | None]:
    """Lightning's (val_check_interval, check_val_every_n_epoch) for `val_every`.

    Above 1 it counts batches across epoch boundaries (Lightning refuses an interval
    longer than one epoch unless check_val_every_n_epoch is None); up to 1 it is a
    fraction of each epoch.
    """
    if not val_every > 0:
        raise MusicgenError(
            f"val_every must be positive (a number of batches, or a fraction of an epoch), got {val_every}"
        )
    if val_every > 1:
        return int(val_every), None
    return (None if val_every == 1 else float(val_every)), 1


def _lock_run_folder(out: Path) -> contextlib.AbstractContextManager:
    """One training run per folder: a second would interleave checkpoints (the folder lock
    ingestion uses too). Only the first process on each machine locks; the DDP workers it
    launches share the run."""
    if os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("SLURM_LOCALID", "0") != "0":
        return contextlib.nullcontext()
    return folder_lock(out, "training run", "wait for it or use another --out")


def train(
    data_dir: str | Path,
    out_dir: str | Path,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    hw: HardwareConfig | None = None,
    *,
    resume: bool = False,
    given: Collection[str] | None = None,
    progress_bar: bool = True,
    logs: bool = True,
    start: Start | None = None,
    echo: Callable[[str], None] = lambda line: None,
) -> TrainResult:
    """Train in `out_dir` from where `train_cfg.init` says (or `start`, already resolved),
    or with `resume` go on with the run saved there. A fine-tune keeps its starting
    point's architecture and vocabulary, and the corpus is mapped into that vocabulary.

    `given`: on resume, the names of the config fields the caller chose (the command line's
    options); the others are the checkpoint's. None: every field of both configs is chosen.
    See musicgen/train/resume.py for which may differ from the checkpoint's. A resumed run
    keeps the starting point it began from (the checkpoint's `init`).
    """
    quiet_lightning()
    hw = hw or HardwareConfig()
    out = Path(out_dir)
    if train_cfg.carry_state is None:
        train_cfg = replace(train_cfg, carry_state=CORES[model_cfg.name].recurrent)
    point = None
    if resume:  # the saved settings, or one line saying which cannot change
        point = resume_point(out / "last.ckpt", model_cfg, train_cfg, data_dir, given)
        model_cfg, train_cfg = point.model, point.train
        start = resolve_init(train_cfg.init, model_cfg.name)  # the vocabulary it learnt
        point.check_start(start.to_dict())
    else:
        start = start or resolve_init(train_cfg.init, model_cfg.name)
        if start.model is not None:  # the architecture it starts from; dropout is the run's
            model_cfg = replace(start.model.model_cfg, dropout=model_cfg.dropout)
    _val_schedule(train_cfg.val_every)  # refused before anything is written
    into = start.model.vocab if start.model is not None else train_cfg.vocab
    # a damaged dataset is refused before anything is written
    dm = MusicDataModule(data_dir, train_cfg, streams=train_cfg.carry_state, into=into)
    if dm.mapped:
        echo(dm.mapped)
    if point is not None:
        point.check_vocab(dm.vocab.tokens, data_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MusicgenError(f"cannot write to {out}: {exc.strerror or exc}") from None
    with _lock_run_folder(out):
        # left by a run that was killed mid-write
        remove_stale_temps(out, ["last.ckpt", "best.ckpt"])
        return _train_locked(
            data_dir, out, dm, model_cfg, train_cfg, hw, point, start, progress_bar, logs
        )


def _train_locked(
    data_dir,
    out: Path,
    dm,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    hw,
    point: ResumePoint | None,
    start: Start,
    progress_bar,
    logs,
) -> TrainResult:
    """One run, its folder locked: the model, the callbacks, Lightning's fit, the result."""
    L.seed_everything(train_cfg.seed, workers=True, verbose=False)
    vocab = dm.vocab  # the dataset's, with the tokens only training uses (seams, Start_moved)
    # the context it learns (on resume the saved ones, which check_vocab found equal)
    model_cfg = replace(model_cfg, vocab_size=len(vocab), max_len=train_cfg.seq_len)
    # a resumed run keeps the record of where it began; its weights come from last.ckpt
    record = point.init if point is not None else start.to_dict()
    lm = build_module(model_cfg, train_cfg, vocab, dm, data_dir, start, record)
    ckpt_cb = ModelCheckpoint(
        dirpath=out,
        filename="best",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        save_last=False,  # last.ckpt is SaveLast's (see why there)
        # after validations only (there is always a validation set): at an epoch's end it
        # would look for val_loss that a run resumed there has not computed again, and warn
        save_on_train_epoch_end=False,
        enable_version_counter=False,
    )
    resume_step = point.step if point is not None else None
    fine_tune = start.model is not None  # new or resumed
    trainer = build_trainer(
        train_cfg,
        hw,
        callbacks(out, train_cfg, ckpt_cb, fine_tune),
        loggers(out, resume_step) if logs else [],
        progress_bar,
        # a resumed fine-tune scored its start when it began (ScoreTheStart's state)
        validate_start=fine_tune and point is None,
    )
    if point is not None:
        point.check_devices(trainer.world_size)
        _say(point.describe())
    t0 = time.perf_counter()
    try:
        ckpt_path = str(point.path) if point is not None else None
        trainer.fit(lm, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    except SystemExit:
        # After Ctrl-C Lightning runs the callbacks (SaveOnInterrupt saves last.ckpt),
        # then exits with code 1; the caller gets a result to report instead.
        if not trainer.interrupted:
            raise
    return _result(out, trainer, ckpt_cb, dm, time.perf_counter() - t0, model_cfg.name)


@rank_zero_only
def _say(line: str) -> None:
    """A line for the person at the terminal, from the first process only."""
    print(line, flush=True)


def build_module(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    vocab,
    dm,
    data_dir,
    start: Start,
    record: dict | None = None,
) -> MusicLM:
    """The LightningModule, its weights where the run starts, and what its checkpoints
    carry: the vocabulary and encoding, where it started (`init`), the form its training
    pieces have (for --form-bias) and the levels of its controls."""
    meta = dataset_meta(vocab, data_dir)
    meta["init"] = record if record is not None else start.to_dict()
    meta["form"] = learn_form_of(dm.train_docs, dm.ds.vocab).to_dict()
    if dm.controls is not None:  # the levels of the controls, in each attribute's units
        meta["controls"] = dm.controls.to_dict()
    meta["corpus"] = corpus_profile(dm.train_docs, dm.ds.vocab, dm.controls)  # --prior corpus
    controls = vocab.control_mask.nonzero()[0].tolist()
    lm = MusicLM(model_cfg, train_cfg, vocab.note_ids.tolist(), meta, controls)
    initial_weights(lm.core, start, train_cfg.freeze)
    return lm


def callbacks(
    out: Path, train_cfg: TrainConfig, ckpt_cb: ModelCheckpoint, fine_tune: bool = False
) -> list[Callback]:
    last = out / "last.ckpt"
    found: list[Callback] = [ckpt_cb, SaveOnInterrupt(last), SaveLast(last), LogStepIsGlobalStep()]
    if fine_tune:
        found.append(ScoreTheStart())
    if train_cfg.patience > 0:
        found.append(
            # checked after each validation only: a run stopped by --max-steps inside its first
            # epoch has no val_loss at the epoch end
            EarlyStopping(
                monitor="val_loss",
                mode="min",
                patience=train_cfg.patience,
                check_on_train_epoch_end=False,
            )
        )
    return found


def build_trainer(
    train_cfg: TrainConfig,
    hw: HardwareConfig,
    callbacks: list,
    loggers: list,
    progress_bar: bool,
    validate_start: bool = False,
) -> L.Trainer:
    val_interval, val_epochs = _val_schedule(train_cfg.val_every)
    return L.Trainer(
        accelerator=hw.accelerator,
        devices=hw.lightning_devices(),
        num_nodes=hw.num_nodes,
        strategy=hw.strategy,
        precision=hw.resolved_precision(),
        max_epochs=train_cfg.epochs if train_cfg.epochs > 0 else -1,
        max_steps=train_cfg.max_steps,
        max_time={"seconds": train_cfg.train_minutes * 60} if train_cfg.max_time > 0 else None,
        gradient_clip_val=train_cfg.grad_clip or None,
        val_check_interval=val_interval,
        check_val_every_n_epoch=val_epochs,
        callbacks=callbacks,
        logger=loggers or False,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        log_every_n_steps=train_cfg.log_every,
        # the whole validation set, once, before the first step: ScoreTheStart's score of
        # the starting weights (outside --max-time: Lightning's timer starts after it)
        num_sanity_val_steps=-1 if validate_start else 0,
        reload_dataloaders_every_n_epochs=1,  # a new epoch draws new windows
        use_distributed_sampler=False,  # the data module shards (see MusicDataModule._sampler)
    )


def _result(out: Path, trainer, ckpt_cb, dm, seconds: float, model: str) -> TrainResult:
    last = out / "last.ckpt"
    # Lightning reports an absolute path; the result names both files the way `out` was given
    best = out / Path(ckpt_cb.best_model_path).name if ckpt_cb.best_model_path else None
    bpn = float("nan")
    if best is not None and best.exists():
        bpn = float(read_checkpoint_dict(best)["musicgen"].get("val_bpn", float("nan")))
    starts = [cb.bpn for cb in trainer.callbacks if isinstance(cb, ScoreTheStart)]
    return TrainResult(
        out,
        best,
        last if last.exists() else None,
        bpn,
        trainer.global_step,
        seconds,
        bool(trainer.interrupted),
        trainer.is_global_zero,
        dm.val_is_held_out,
        model,
        starts[0] if starts else None,
    )
