"""Console-script entry points that answer ``--help`` without importing imgcls or TensorFlow, and end the process
without Python's teardown of TensorFlow once a command is done.

``import imgcls`` loads Keras (seconds), so the help is rendered here from the YAML files of
``imgcls.conf`` alone; every other command line goes on to ``imgcls.<app>.main`` (:func:`run_and_exit`).
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import re
import sys
import textwrap
import threading
from collections.abc import Callable
from itertools import takewhile
from pathlib import Path

import yaml

WIDTH = 100
HELP_FLAGS = {"-h", "--help"}
TOP_LEVEL_KEY = re.compile(r"^([A-Za-z_]\w*):")
SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z]|$)")


def train():
    """``imgcls-train``."""
    return launch("train")


def evaluate():
    """``imgcls-evaluate``."""
    return launch("evaluate")


def predict():
    """``imgcls-predict``."""
    return launch("predict")


def export():
    """``imgcls-export``."""
    return launch("export")


def launch(app: str, argv: list[str] | None = None):
    """Print the app's help for a plain ``--help``; otherwise run ``imgcls.<app>.main``."""
    argv = sys.argv[1:] if argv is None else argv
    if wants_plain_help(argv) and (conf := conf_dir()) is not None:
        print(render_help(app, conf))
        return None
    return run_and_exit(importlib.import_module(f"imgcls.{app}").main)


def run_and_exit(main: Callable[[], object]) -> None:
    """Run a command's ``main``, then end the process with its exit status as soon as its work is flushed.

    The atexit handlers run (logging's flush and close among them); only the interpreter's own teardown is
    skipped, which for a process that used TensorFlow takes over a second after every file was written. With a
    thread still running, or when ``main`` raises anything but SystemExit, the process ends as Python ends it.
    """
    try:
        main()
        status: object = 0
    except SystemExit as stop:
        status = stop.code
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(status)
    if status is not None and not isinstance(status, int):
        print(status, file=sys.stderr)  # what Python does with sys.exit("message")
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(status or 0)


def wants_plain_help(argv: list[str]) -> bool:
    """``-h``/``--help`` with overrides at most; other Hydra flags (``--cfg``, ``-cn``, ...) go to Hydra."""
    flags = {arg for arg in argv if arg.startswith("-")}
    return bool(flags) and flags <= HELP_FLAGS


def conf_dir() -> Path | None:
    """The folder of the ``imgcls.conf`` package, found as import would find it but without running imgcls."""
    package = importlib.util.find_spec("imgcls")
    if package is None:
        return None
    # What import does for a submodule: ask each finder with the parent's path. An editable install's
    # finder maps imgcls.conf to the repository's conf/; a wheel has it inside the package.
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        spec = find_spec("imgcls.conf", package.submodule_search_locations) if find_spec else None
        if spec is not None and spec.submodule_search_locations:
            return Path(next(iter(spec.submodule_search_locations)))
    return None


def render_help(app: str, conf: Path) -> str:
    """Header, each group's options, the top-level keys, and where to see more; lines of at most 100 columns."""
    text = (conf / f"{app}.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    settings = help_settings(app, config, conf)
    app_name = settings["app_name"]
    parts = [settings["header"].rstrip("\n"), ""]
    groups = config_groups(config.get("defaults", []), conf)
    if groups:
        parts.append("== Config groups: group=option (* the default) ==")
        rows = []
        for group, (default, options) in groups.items():
            rows.append((group + (":" if default else ": (optional; none by default)"), None))
            rows += [(("  * " if name == default else "    ") + name, summary) for name, summary in options.items()]
        parts += [*table(rows), ""]
    parts.append(f"== Settings: key=value (nested keys too: {app_name} --cfg job) ==")
    parts += table([("  " + label, summary) for label, summary in key_summaries(text, config).items()])
    parts += [
        "",
        f"The whole config with your overrides: {app_name} [key=value ...] --cfg job",
        f"Hydra's own flags (--multirun, --cfg, --info, shell completion): {app_name} --hydra-help",
    ]
    return "\n".join(parts)


def help_settings(app: str, config: dict, conf: Path) -> dict[str, str]:
    """``hydra.help`` as Hydra composes it: from the ``hydra/<group>`` options of the defaults list (the shared
    ``hydra/app: tool`` block), then the app's own file; ``${hydra.job.name}`` is the app."""
    settings = {}
    for item in config.get("defaults", []):
        if isinstance(item, dict):
            ((key, option),) = item.items()
            group = key.split()[-1].strip("/")  # "override hydra/x" -> hydra/x
            if group.startswith("hydra/") and option:
                shared = yaml.safe_load((conf / group / f"{option}.yaml").read_text(encoding="utf-8")) or {}
                settings.update(shared.get("help", {}))
    settings.update(config.get("hydra", {}).get("help", {}))
    return {key: str(value).replace("${hydra.job.name}", app) for key, value in settings.items()}


def table(rows: list[tuple[str, str | None]], max_label: int = 22) -> list[str]:
    """``label  summary`` lines, summaries aligned and wrapped at 100 columns; a None summary: a heading."""
    width = min(max_label, max(len(label) for label, summary in rows if summary is not None))
    indent = " " * (width + 2)
    lines = []
    for label, summary in rows:
        if len(label) > width or not summary:
            lines.append(label)
            label = ""
        if summary:
            lines.append(
                textwrap.fill(
                    summary,
                    WIDTH,
                    initial_indent=f"{label:<{width}}  ",
                    subsequent_indent=indent,
                    break_on_hyphens=False,
                )
            )
    return lines


def config_groups(defaults: list, conf: Path) -> dict[str, tuple[str | None, dict[str, str]]]:
    """Each group of the defaults list: its default option and ``{option: summary}`` from conf/<group>/."""
    groups = {}
    for item in defaults:
        if not isinstance(item, dict):
            continue  # _self_
        ((key, default),) = item.items()
        group = key.split()[-1].split("@")[0].strip("/")  # "optional group@package" -> group
        if group.startswith("hydra/"):
            continue
        files = sorted((conf / group).glob("*.yaml"))
        groups[group] = (default, {f.stem: option_summary(f) for f in files})
    return groups


def option_summary(path: Path) -> str:
    """The first sentence of the option file's leading comment (a ``@package`` line skipped)."""
    leading = takewhile(lambda line: line.startswith("#"), path.read_text(encoding="utf-8").splitlines())
    return first_sentence([line for line in leading if not line.startswith("# @package")])


def key_summaries(text: str, config: dict) -> dict[str, str]:
    """``{label: summary}`` per top-level key: the comment right above it, else its sub-keys or ``required``."""
    lines = text.splitlines()
    summaries = {}
    for number, line in enumerate(lines):
        match = TOP_LEVEL_KEY.match(line)
        if not match or match[1] in ("defaults", "hydra"):
            continue
        key, value = match[1], config[match[1]]
        start = number
        while start > 0 and lines[start - 1].startswith("#"):
            start -= 1
        # A block reaching the first line is the file's own header, not this key's comment.
        summary = first_sentence(lines[start:number]) if start > 0 else ""
        if isinstance(value, dict):
            summaries[key] = summary or "keys: " + ", ".join(value)
        else:
            required = value == "???" and "required" not in summary.lower()
            summaries[f"{key}={scalar(value)}"] = f"{summary} Required.".strip() if required else summary
    return summaries


def first_sentence(comment: list[str]) -> str:
    """The first sentence of a comment block's first paragraph; a line ending in ``:`` ends it too."""
    text = ""
    for line in comment:
        line = line.removeprefix("#")
        if not line.strip() or line.startswith("  "):
            break  # a blank comment line or an indented example command
        text = f"{text} {line.strip()}".strip()
        end = SENTENCE_END.search(text)
        if end:
            return text[: end.end()]
        if text.endswith(":"):
            return text[:-1]
    return text


def scalar(value) -> str:
    """A YAML scalar as written on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
