"""Build objects that configs name by ``_target_`` (or ``backbone.constructor``), limited to constructors this
project trusts: a config is data, and must not reach model loaders, file or process functions.

A name passes when it matches one of :data:`TRUSTED` and, once imported, is a class (or, where allowed, a plain
function) defined in that entry's implementation package. The second check closes aliases such as
``imgcls.training.schedules.keras.models.load_model`` and keeps ``keras.layers.*`` to preprocessing layers.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hydra.utils import get_object, instantiate
from omegaconf import ListConfig, OmegaConf

from imgcls.errors import ConfigError


@dataclass(frozen=True)
class Trusted:
    """Callables a config may name: ``pattern`` (a dotted name, or a package's members with a trailing ``.*``)
    that are defined in ``defined_in`` or a module below it, and are classes unless ``functions`` is set."""

    pattern: str
    defined_in: str
    functions: bool = False

    def admits_name(self, name: str) -> bool:
        if self.pattern.endswith(".*"):
            return name.startswith(self.pattern[:-1])
        return name == self.pattern

    def admits_object(self, obj: Any) -> bool:
        if not (inspect.isclass(obj) or (self.functions and inspect.isfunction(obj))):
            return False  # modules, methods (``Adam.from_config``), builtins and instances are out
        module = getattr(obj, "__module__", "") or ""
        return module == self.defined_in or module.startswith(self.defined_in + ".")


TRUSTED = (
    Trusted("keras.optimizers.*", "keras.src.optimizers"),  # classes: not keras.optimizers.deserialize or get
    Trusted("keras.optimizers.schedules.*", "keras.src.optimizers.schedules"),
    Trusted("keras.layers.*", "keras.src.layers.preprocessing"),  # preprocessing and augmentation layers only
    Trusted("keras.applications.*", "keras.src.applications", functions=True),
    Trusted("keras_hub.models.*", "keras_hub.src.models"),
    Trusted("keras_hub.layers.*", "keras_hub.src.models"),  # the image converters of keras-hub's models
    Trusted("tensorflow.distribute.*", "tensorflow.python.distribute"),
    Trusted("tensorflow.distribute.get_strategy", "tensorflow.python.distribute.distribute_lib", functions=True),
    Trusted("optuna.samplers.*", "optuna.samplers"),
    Trusted("optuna.pruners.*", "optuna.pruners"),
    Trusted("imgcls.training.schedules.*", "imgcls.training.schedules", functions=True),
    Trusted("imgcls.training.strategy.auto_strategy", "imgcls.training.strategy", functions=True),
    Trusted("imgcls.training.multi_worker.multi_worker_strategy", "imgcls.training.multi_worker", functions=True),
    Trusted("imgcls.data.mixing.*", "imgcls.data.mixing"),
    Trusted("imgcls.models.compact_resnet.*", "imgcls.models.compact_resnet", functions=True),
    Trusted("imgcls.runs.callback.RunsTableCallback", "imgcls.runs.callback"),  # hydra.callbacks in train.yaml
)

# Hydra's execution whitelist (``@hydra.main(execution_whitelist=...)``): the same names, as Hydra patterns.
TRUSTED_TARGETS = tuple(dict.fromkeys(entry.pattern for entry in TRUSTED))


def _refusal(key: str, name: Any, why: str) -> ConfigError:
    allowed = ", ".join(TRUSTED_TARGETS)
    return ConfigError(f"{key}={name} is not allowed: {why}. A config may only name these constructors: {allowed}.")


def trusted_callable(name: Any, key: str = "_target_") -> Any:
    """The class or function that the dotted ``name`` (from the config setting ``key``) names, after checking it
    against :data:`TRUSTED`; a :class:`ConfigError` naming it otherwise. Nothing is called, only imported."""
    if not isinstance(name, str) or not name:
        raise _refusal(key, name, "not a dotted name")
    entries = [entry for entry in TRUSTED if entry.admits_name(name)]
    if not entries:
        raise _refusal(key, name, "it is not in imgcls's whitelist of config targets")
    try:
        obj = get_object(name)
    except Exception as error:  # Hydra raises ImportError or a bare Exception for a name that does not exist
        raise ConfigError(f"{key}={name}: no such class or function ({error}).") from error
    if not any(entry.admits_object(obj) for entry in entries):
        where = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"
        raise _refusal(key, name, f"it is {where}, not one of the constructors its package may give a config")
    return obj


def _targets(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every ``(config key, _target_ value)`` in the plain container ``node``, nested ones included."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                yield child, value
            else:
                yield from _targets(value, child)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _targets(value, f"{path}[{index}]")


def _config_path(node: Any) -> str:
    """Where ``node`` sits in its root config, as a user writes it: ``augmentation.layers[0]``."""
    parts = []
    while node._get_parent() is not None:
        parent = node._get_parent()
        parts.append(f"[{node._key()}]" if isinstance(parent, ListConfig) else f".{node._key()}")
        node = parent
    return "".join(reversed(parts)).lstrip(".")


def check_targets(config: Any) -> tuple[str, ...]:
    """Every ``_target_`` in ``config`` (nested ones too) checked by :func:`trusted_callable`: their names, and
    where what they name is defined (Hydra also checks a callable result, such as a layer, by its class)."""
    if OmegaConf.is_config(config):
        path, plain = _config_path(config), OmegaConf.to_container(config, resolve=True)
    else:
        path, plain = "", config
    names = []
    for key, name in _targets(plain, path):
        obj = trusted_callable(name, key)
        names += [name, f"{obj.__module__}.{obj.__qualname__}"]
    return tuple(dict.fromkeys(names))


def build(config: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` of ``config`` with plain-Python arguments, once every ``_target_`` in it
    (nested ones too) has passed :func:`trusted_callable`; Hydra's execution whitelist is then those exact names."""
    return instantiate(config, _convert_="all", _execution_whitelist_=check_targets(config), **kwargs)
