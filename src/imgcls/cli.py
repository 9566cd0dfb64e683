"""What every console entry point does around its work: log the config, end user errors cleanly."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from imgcls.errors import ImgclsError
from imgcls.sweeps.interrupts import interruptible

log = logging.getLogger(__name__)
Result = TypeVar("Result")


def run_job(cfg: DictConfig, work: Callable[[], Result]) -> Result:
    """Log the resolved ``cfg``, then return ``work()``.

    A problem the user can fix (:class:`ImgclsError`) ends a single run with its message and exit
    code 2; in a multirun it propagates, so the sweeper records the failed job and goes on. A
    sweep's Ctrl-C or SIGTERM stops ``work()`` at once (see :mod:`imgcls.sweeps.interrupts`).
    """
    log.info("Resolved config:\n%s", OmegaConf.to_yaml(cfg, resolve=True))
    try:
        with interruptible():
            return work()
    except ImgclsError as error:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise
        log.error("%s", error)
        sys.exit(2)
