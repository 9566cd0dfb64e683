"""What every console entry point does around its work: log the config, write environment.json, end errors cleanly."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from imgcls.environment import ENVIRONMENT_FILE, write_environment
from imgcls.errors import DiskFullError, ImgclsError
from imgcls.sweeps.interrupts import interruptible

log = logging.getLogger(__name__)
Result = TypeVar("Result")


def record_environment() -> None:
    """Write environment.json into Hydra's run folder, unless there is one; never fail the run.

    A folder continued with resume=true keeps the environment its run started in, and a refused
    resume leaves the folder as it was. Outside a Hydra job there is no run folder: nothing is written.
    """
    if not HydraConfig.initialized():
        return
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if (run_dir / ENVIRONMENT_FILE).exists():
        return
    try:
        write_environment(run_dir)
    except OSError as error:
        log.warning("%s not written: %s", ENVIRONMENT_FILE, error)


def run_job(cfg: DictConfig, work: Callable[[], Result], *, exit_on_error: bool = True) -> Result:
    """Log the resolved ``cfg``, write environment.json into the run folder, then return ``work()``.

    A problem the user can fix (:class:`ImgclsError`) ends a single run with its message and exit
    code 2; in a multirun, or with ``exit_on_error=False`` (a call from Python), it propagates, so a
    sweeper records the failed job and goes on. A sweep's Ctrl-C or SIGTERM stops ``work()`` at once
    (see :mod:`imgcls.sweeps.interrupts`).
    """
    log.info("Resolved config:\n%s", OmegaConf.to_yaml(cfg, resolve=True))
    record_environment()
    try:
        with interruptible():
            return work()
    except ImgclsError as error:
        if not exit_on_error or HydraConfig.get().mode == RunMode.MULTIRUN:
            raise
        log.error("%s", error)
        if isinstance(error, DiskFullError):
            # A file that a native library (HDF5) could not write stays open in it, and flushing it again as
            # Python shuts down can crash the process after the message. Everything kept is on disk already.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        sys.exit(2)
