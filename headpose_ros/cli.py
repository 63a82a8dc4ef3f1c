"""headpose-ros: the command-line face of the engine (rclpy only where a command says so: demo, soak, bag).

Each subcommand lives in its own module under ``headpose_ros.tools`` and
exposes ``add_arguments(parser)`` and ``run(args) -> int``. Modules are
imported only when their command runs, so ``headpose-ros predict`` never
imports rclpy and a broken optional dependency cannot break other commands.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS = {
    "prepare": ("headpose_ros.tools.prepare", "fetch, convert and verify the models and sample photos"),
    "predict": ("headpose_ros.tools.predict", "estimate head poses on image files, print JSON"),
    "bench": ("headpose_ros.tools.bench", "time every stage and the node end to end"),
    "soak": ("headpose_ros.tools.soak", "the node under sustained or burst load: drops, latency, memory"),
    "eval": ("headpose_ros.tools.eval", "accuracy on a head-pose dataset, or consistency on real photos"),
    "synth": ("headpose_ros.tools.synth", "render a ground-truth head-pose set from real photos"),
    "bag": ("headpose_ros.tools.bag", "the node's outputs for a recorded bag, computed offline into a new bag"),
    "demo": ("headpose_ros.tools.demo", "run the node over DDS on a built-in image sequence, a video or a camera"),
    "export-hopenet": ("headpose_ros.tools.export_hopenet", "convert the authors' Hopenet checkpoint to ONNX"),
}


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def add_set_argument(parser) -> None:
    """`--set NAME=VALUE`, repeatable: any engine setting (config/headpose.yaml's names, dotted)."""
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="settings",
                        help="an engine setting, as named in config/headpose.yaml (dotted), e.g. "
                             "--set hopenet.mirror=still; the value is read as YAML; repeatable")


def check_fov(fov: float | None) -> None:
    """CommandError unless `fov` (an option's horizontal field of view, degrees; None: not given) is one a camera
    can have (core.camera's bounds)."""
    from .core.camera import MAX_FOV_DEG, MIN_FOV_DEG

    if fov is not None and not MIN_FOV_DEG <= fov <= MAX_FOV_DEG:
        raise CommandError(f"--fov {fov:g}: a horizontal field of view in degrees, "
                           f"between {MIN_FOV_DEG:g} and {MAX_FOV_DEG:g}")


def setting_values(pairs: list[str]) -> dict:
    """The dotted-name settings of `--set` arguments; CommandError for a malformed pair or an unknown name.

    Values are read as YAML scalars or lists (true, 0.3, [a, b]), as a params file gives them;
    whether they are allowed is the engine's check (EngineConfig.problems).
    """
    import yaml

    from .core.config import definitions

    known = definitions()
    values = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CommandError(f"--set {pair!r}: expected NAME=VALUE, e.g. hopenet.mirror=still")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        if name not in known:
            group = any(other.startswith(name + ".") for other in known)
            raise CommandError(f"--set {name}: " + ("a group of settings, not one setting" if group else
                               "no such setting (the names are config/headpose.yaml's, dotted, e.g. "
                               "detection.score_threshold)"))
        values[name] = value
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="headpose-ros", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    modules = {}
    for name, (module_name, summary) in COMMANDS.items():
        p = sub.add_parser(name, help=summary, description=summary)
        # Import only the module whose command runs; the others just get listed.
        if name == wanted:
            modules[name] = importlib.import_module(module_name)
            modules[name].add_arguments(p)
    args = parser.parse_args(argv)
    try:
        return int(modules[args.command].run(args) or 0)
    except CommandError as exc:
        print(f"headpose-ros {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): end quietly, and keep Python from complaining when it flushes stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a process killed by SIGPIPE
    except Exception as exc:  # a bug or an unforeseen input: one line, the traceback only on request
        if os.environ.get("HEADPOSE_ROS_TRACEBACK"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"headpose-ros {args.command}: internal error: {type(exc).__name__}: {first} (set "
              "HEADPOSE_ROS_TRACEBACK=1 to see where; please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # Import through the package, so that CommandError raised by the tools is the class caught above.
    from headpose_ros.cli import main as package_main

    sys.exit(package_main())
