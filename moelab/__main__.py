"""Command line: ``python -m moelab zoo`` builds (or verifies) the offline zoo.

Examples
--------
``python -m moelab convert old-folder new-folder``  a ``pytorch_model.bin`` checkpoint to safetensors
``python -m moelab zoo``                       build or verify both zoos in the cache
``python -m moelab zoo --names switch-tiny``   only one
``python -m moelab zoo --root ./zoo-cache``    another cache root (or set MOELAB_ZOO_DIR)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from labcore.registry import Registry


def _zoo_command(args: argparse.Namespace) -> int:
    from moelab.zoo import BUILD_BUDGET_SECONDS, ensure_zoo

    started = time.perf_counter()
    zoos = ensure_zoo(args.names, args.root)
    print(f"zoo ready in {time.perf_counter() - started:.1f} s")
    status = 0
    for name, zoo in zoos.items():
        evaluation = zoo.manifest["evaluation"]
        acceptance = evaluation["acceptance"]
        params = zoo.manifest["parameters"]
        build = zoo.manifest["build"]
        together = " + ".join(build["zoos_built_together"])
        print(
            f"\n{name}: {zoo.root}\n  parameters {params['total']:,} "
            f"(experts {params['expert_fraction']:.1%})\n  built in {build['seconds']:.0f} s "
            f"({together}; budget {BUILD_BUDGET_SECONDS} s for both zoos on 2 idle cores), "
            f"{build['jobs']} jobs x {build['threads_per_job']} thread(s)"
        )
        print(f"  {evaluation['metric']} on own held-out data: base -> variant")
        for variant, row in acceptance["variants"].items():
            mark = "ok" if row["passed"] else "FAILED"
            print(f"    {variant:<11} {row['base']:>9.4f} -> {row['variant']:>9.4f}  {mark}")
        status |= 0 if acceptance["passed"] else 1
    return status


def _convert_command(args: argparse.Namespace) -> int:
    from moelab.loading import convert_to_safetensors

    out = convert_to_safetensors(args.source, args.target)
    print(f"wrote {out}")
    return 0


def _zoo_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--names", nargs="+", default=["mixtral-tiny", "switch-tiny"], help="zoos to ensure"
    )
    cmd.add_argument(
        "--root", default=None, help="cache root (default: $MOELAB_ZOO_DIR or user cache)"
    )


def _convert_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("source", help="folder with config.json and pytorch_model*.bin")
    cmd.add_argument("target", help="new folder for the safetensors checkpoint")


# subcommand -> (help, handler, arguments); one entry per command instead of an if-chain.
_Command = tuple[
    str, Callable[[argparse.Namespace], int], Callable[[argparse.ArgumentParser], None]
]
_COMMANDS: Registry[_Command] = Registry("command", plural="commands", sort=False)
_COMMANDS.add(
    "zoo", ("build or verify the offline zoo of tiny MoE models", _zoo_command, _zoo_arguments)
)
_COMMANDS.add(
    "convert",
    ("convert a pytorch_model.bin checkpoint to safetensors", _convert_command, _convert_arguments),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m moelab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, _, arguments) in _COMMANDS.items():
        arguments(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    return _COMMANDS[args.command][1](args)


if __name__ == "__main__":
    sys.exit(main())
