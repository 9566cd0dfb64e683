"""The train config's schema: the allowed values of every enumerated setting and the range of every numeric one.

:func:`check_config` runs first in :func:`imgcls.train.train` (the CLI, sweeps' jobs and the Python API
all go through it), so a typo such as ``data.cache=memroy`` stops the run before anything reads the data,
with every bad setting in one message. The tables below are the one place these values are listed: the
code that consumes a setting checks it with :func:`check_choice` instead of keeping its own list.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from imgcls.errors import ConfigError

# key -> allowed values; booleans and integers are matched by type (true is not 1)
CHOICES: dict[str, tuple[Any, ...]] = {
    "precision": ("auto", "float32", "mixed_float16", "mixed_bfloat16"),
    # what train() can return for sweeps to optimize: validation metrics only, never test ones
    "optimized_metric": ("val_accuracy", "val_loss", "val_precision", "val_recall", "val_f1"),
    "data.cache": ("memory", "disk", "none"),
    "data.class_weights": ("none", "balanced"),
    "data.augment_on": ("auto", "pipeline", "device"),
    "data.on_corrupt": ("skip", "fail", "quarantine"),
    "data.on_overlap": ("warn", "fail"),
    "train.lr_scaling": ("linear", "none"),
    "train.deterministic": ("auto", True, False),
    "train.jit_compile": ("auto", True, False),
    # how lr: auto reads a rate off the learning-rate finder's curve (imgcls.training.lr_finder.RULES)
    "train.lr_finder_rule": ("minimum", "valley"),
    "train.verbose": ("auto", 0, 1, 2),
    "train.tensorboard": (True, False),
    # what every training epoch logs (loss and accuracy, on the training and the validation split)
    "train.early_stopping.monitor": ("val_loss", "val_accuracy", "loss", "accuracy"),
    "eval.tta": (True, False),
    "eval.calibrate": (True, False),
    # frozen-backbone phases train the head on features computed once (imgcls.training.feature_cache)
    "train.feature_cache": ("auto", True, False),
    # the constructor's convention (imgcls.models.backbone), the raw-RGB preprocessing and the feature pooling
    "backbone.source": ("keras_applications", "keras_hub"),
    "backbone.preprocessing": ("caffe", "tf", "torch", "builtin", "preset"),
    "backbone.pooling": ("avg", "cls_token"),
}


@dataclass(frozen=True)
class Range:
    """A number between ``low`` and ``high`` (None: unbounded), each end included unless said open.

    ``convert``: how the consuming code reads the value (``float(...)`` or ``int(...)``), for settings it
    converts, so that whatever it accepts passes; None: the value must already be a number (an integer
    with ``integer``), as where it is used as is.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    convert: Callable[[Any], float] | None = None

    def number(self, value: Any) -> float | None:
        """``value`` as the code reads it, or None where it is not a number of the right kind."""
        if isinstance(value, bool):
            return None
        if self.convert is not None:
            try:
                return self.convert(value)
            except (TypeError, ValueError):
                return None
        kinds = (int,) if self.integer else (int, float)
        return value if isinstance(value, kinds) else None

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            return (
                f"{kind} in {'(' if self.low_open else '['}{_show(self.low)}, "
                f"{_show(self.high)}{')' if self.high_open else ']'}"
            )
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {_show(self.low)}"
        return kind

    def holds(self, number: float) -> bool:
        if self.low is not None and (number <= self.low if self.low_open else number < self.low):
            return False
        return self.high is None or (number < self.high if self.high_open else number <= self.high)


RANGES: dict[str, Range] = {
    "data.batch_size": Range(1, integer=True),
    "data.image_size": Range(1, integer=True),
    "data.val_split": Range(0, 1, low_open=True, high_open=True),
    "data.shuffle_buffer": Range(1, integer=True),
    "data.max_image_pixels": Range(1, integer=True),
    "model.dense_units": Range(1, integer=True),
    "model.dropout": Range(0, 1, high_open=True),
    "model.l2": Range(0),
    "train.label_smoothing": Range(0, 1),
    "train.early_stopping.patience": Range(0, integer=True),
    "train.min_epoch_steps": Range(1, integer=True),
    "train.budget_minutes": Range(0, low_open=True, convert=float),  # or null: no budget
}
# each phase the run's recipe runs: train.phases.<name>.<field> (read with int() and float(), see phase_plans)
PHASE_RANGES: dict[str, Range] = {
    "epochs": Range(0, integer=True, convert=int),
    "steps": Range(0, integer=True, convert=int),  # or null: the length is in epochs
    "min_steps": Range(0, integer=True, convert=int),
    "lr": Range(0, low_open=True, convert=float),
    "backbone_lr_mult": Range(0, convert=float),
    "layer_decay": Range(0, 1, low_open=True, convert=float),  # or null: no layer-wise decay
}

OPTIONAL_PHASE_FIELDS = ("layer_decay", "steps")  # null turns them off
OPTIONAL_SETTINGS = ("train.budget_minutes",)
PHASE_WORDS = {"lr": ("auto",)}  # words a phase's numeric field also takes: lr: auto, the finder's suggestion

# a value of one setting that needs another setting given: (key, value) -> (the other key, what to give it)
NEEDS: dict[tuple[str, Any], tuple[str, str]] = {
    ("data.on_corrupt", "quarantine"): ("data.quarantine_dir", "<folder outside the class trees>"),
    ("data.cache", "disk"): ("data.cache_dir", "<folder>"),
}

_ABSENT = object()


def _show(value: Any) -> str:
    """``value`` as it is written in a config or an override: true, false, null, 0.001."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _is_choice(value: Any, choice: Any) -> bool:
    """``value == choice``, but true is not 1, and an integer may be given as its digits ('1'), as int() reads them."""
    if isinstance(choice, bool) or isinstance(value, bool):
        return value is choice
    if isinstance(choice, int) and isinstance(value, str):
        return value.strip() == str(choice)
    return type(value) is type(choice) and value == choice


def choice_problem(key: str, value: Any, allowed: tuple[Any, ...] | None = None, *, why: str = "is not") -> str | None:
    """Why ``key=value`` is not one of ``allowed`` (by default ``CHOICES[key]``), with a close match if there is one;
    None when it is one of them."""
    allowed = CHOICES[key] if allowed is None else allowed
    if any(_is_choice(value, choice) for choice in allowed):
        return None
    names = [_show(choice) for choice in allowed]
    close = difflib.get_close_matches(_show(value), names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{key}={_show(value)} {why} one of {', '.join(names)}{hint}"


def check_choice(key: str, value: Any) -> Any:
    """``value`` when it is one of ``CHOICES[key]``, else a :class:`ConfigError` that says which ones are."""
    problem = choice_problem(key, value)
    if problem:
        raise ConfigError(f"{problem}.")
    return value


def _range_problem(key: str, value: Any, rule: Range) -> str | None:
    number = rule.number(value)
    if number is not None and rule.holds(number):
        return None
    return f"{key}={_show(value)} is not {rule.describe()}"


def _select(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=_ABSENT)


def config_problems(cfg: DictConfig) -> list[str]:
    """Every setting of a composed train config that cannot work, as ``key=value is not ...`` lines."""
    problems = []
    for key, allowed in CHOICES.items():
        value = _select(cfg, key)
        if value is not _ABSENT:
            problems.append(choice_problem(key, value, allowed))
    for key, rule in RANGES.items():
        value = _select(cfg, key)
        if value is not _ABSENT and not (key in OPTIONAL_SETTINGS and value is None):
            problems.append(_range_problem(key, value, rule))

    for (key, value), (needed, what) in NEEDS.items():
        if _select(cfg, key) == value and _select(cfg, needed) in (None, _ABSENT):
            problems.append(f"{key}={value} needs {needed}={what}")

    image_size, minimum = _select(cfg, "data.image_size"), _select(cfg, "backbone.min_image_size")
    if RANGES["data.image_size"].number(image_size) is not None and isinstance(minimum, int) and image_size < minimum:
        problems.append(
            f"data.image_size={image_size} is below {_select(cfg, 'backbone.name')}'s minimum of {minimum} px"
        )

    recipes, phases = _select(cfg, "train.recipes"), _select(cfg, "train.phases")
    init = _select(cfg, "train.init")
    if isinstance(recipes, DictConfig) and init is not _ABSENT:
        if init not in recipes:
            problems.append(
                choice_problem("train.init", init, tuple(recipes), why="has no recipe (train.recipes), not")
            )
        elif isinstance(phases, DictConfig):
            for name in recipes[init].phases:
                if name not in phases:
                    problems.append(
                        f"train.recipes.{init}.phases names {name}, which is not one of train.phases: "
                        f"{', '.join(phases)}"
                    )
                    continue
                for field, rule in PHASE_RANGES.items():
                    if field not in phases[name]:
                        continue
                    value = phases[name][field]
                    if field in OPTIONAL_PHASE_FIELDS and value is None or value in PHASE_WORDS.get(field, ()):
                        continue
                    problems.append(_range_problem(f"train.phases.{name}.{field}", value, rule))
    return [problem for problem in problems if problem]


def check_config(cfg: DictConfig) -> None:
    """Fail at start-up, before any data is read, on every setting of ``cfg`` (a train config) that cannot work."""
    problems = config_problems(cfg)
    if len(problems) == 1:
        raise ConfigError(f"{problems[0]}.")
    if problems:
        raise ConfigError(f"{len(problems)} settings cannot work:\n  " + "\n  ".join(problems))
