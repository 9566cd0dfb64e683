"""imgcls-evaluate, -predict and -export: one Hydra block (conf/hydra/app/tool.yaml), the same run folders and help."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from helpers import compose_app, run_entrypoint

TOOLS = ["evaluate", "predict", "export"]
# What each app requires besides model=, so that a run starts and fails on the missing model file.
REQUIRED = {"evaluate": ["data.test_dir=."], "predict": ["input=."], "export": []}


def hydra_settings(app: str) -> dict:
    """The app's Hydra settings as written (interpolations unresolved), with its header left out."""
    cfg = compose_app(app, return_hydra_config=True)
    hydra = OmegaConf.to_container(cfg.hydra, resolve=False)
    return {
        "choice": hydra["runtime"]["choices"].get("hydra/app"),
        "run": hydra["run"]["dir"],
        "sweep": hydra["sweep"]["dir"],
        "chdir": hydra["job"]["chdir"],
        "app_name": hydra["help"]["app_name"],
        "template": hydra["help"]["template"],
        "paths": sorted(cfg.paths),
    }


def test_the_three_apps_share_one_hydra_block():
    settings = {app: hydra_settings(app) for app in TOOLS}
    assert settings["evaluate"] == settings["predict"] == settings["export"]
    shared = settings["evaluate"]
    assert shared["choice"] == "tool" and shared["chdir"] is False and shared["app_name"] == "imgcls-${hydra.job.name}"
    # ${hydra.job.name} is the module Hydra runs: outputs/evaluate/..., outputs/predict/..., outputs/export/...
    assert shared["run"].startswith("${paths.log_dir}/outputs/${hydra.job.name}/")
    assert shared["sweep"].startswith("${paths.log_dir}/multirun/${hydra.job.name}/")
    # imgcls-train's groups (backbone, augmentation, ...) do not apply to these apps: the help lists only the config
    assert "$APP_CONFIG_GROUPS" not in shared["template"] and "$CONFIG" in shared["template"]


@pytest.mark.slow
@pytest.mark.parametrize("app", TOOLS)
def test_each_app_runs_in_its_own_folder_under_paths_log_dir(app, tmp_path):
    log_dir = tmp_path / "runs"
    result = run_entrypoint(
        f"imgcls.{app}", [f"model={tmp_path / 'nope.keras'}", *REQUIRED[app], f"paths.log_dir={log_dir}"], cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr[-2000:]
    (run,) = log_dir.glob(f"outputs/{app}/*/*")
    assert "file not found" in (run / f"{app}.log").read_text(encoding="utf-8")
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
@pytest.mark.parametrize("app", TOOLS)
def test_hydra_help_lists_the_apps_own_keys_only(app, tmp_path):
    result = run_entrypoint(f"imgcls.{app}", ["--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"imgcls-{app}: ") and "model: ???" in result.stdout
    assert "paths:" in result.stdout and "backbone:" not in result.stdout and "mixup:" not in result.stdout
