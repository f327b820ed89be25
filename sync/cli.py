"""The `tasveer` command line: one sub-command per module, each module registers its own parser."""
from __future__ import annotations

import argparse
import importlib
import sys

# sub-command name -> module that defines `register(subparsers)`; imported lazily so that
# `tasveer --help` stays fast and a missing optional dependency only breaks its own command.
COMMANDS = {
    "train": "sync.cmd_train",
    "evaluate": "sync.cmd_train",
    "predict": "sync.cmd_train",
    "up": "sync.up",
    "import": "sync.importer",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tasveer",
        description="Active-learning image classification around Label Studio.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    seen = set()
    for module_name in dict.fromkeys(COMMANDS.values()):
        if module_name in seen:
            continue
        seen.add(module_name)
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
