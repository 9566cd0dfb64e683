"""A Hydra callback that writes runs.csv into a multirun's folder when the multirun ends."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from imgcls.runs.collect import collect_runs
from imgcls.runs.table import build_table, sort_table, write_csv

log = logging.getLogger(__name__)


class RunsTableCallback(Callback):
    """At the end of a multirun, ``<hydra.sweep.dir>/<filename>``: its jobs' runs, best ``optimized_metric`` first."""

    def __init__(self, filename: str = "runs.csv") -> None:
        self.filename = filename

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = build_table(collect_runs([sweep_dir]))
        if not table.rows:
            return
        metric = OmegaConf.select(config, "optimized_metric", default="val_accuracy")
        if metric in table.columns:
            table = sort_table(table, metric)
        path = write_csv(table, sweep_dir / self.filename)
        log.info("%d run(s) in %s (imgcls-runs %s prints them)", len(table.rows), path, sweep_dir)
