"""`tasveer COMMAND ...`: each verb is a module of this package with `register(subparsers)`,
imported only when needed so `tasveer --help` stays fast and a missing optional part breaks only
its own verb."""

from __future__ import annotations

import argparse
import importlib
import sys

# verb -> (module, one-line help); the module's `register` adds the verb's parser
COMMANDS = {
    "up": ("cli.up", "start Label Studio and the ML backend, wired together"),
    "import": ("cli.imports", "upload images to a Label Studio project and wait for their predictions"),
    "train": ("cli.train", "train a classifier on a class-per-folder tree"),
    "evaluate": ("cli.evaluate", "evaluate a model version on labelled images"),
    "predict": ("cli.predict", "label images with a model version"),
    "versions": ("cli.versions", "list a project's model versions (accuracy, which serves, candidates)"),
    "promote": ("cli.promote", "serve a model version (promote a candidate, or roll back)"),
    "deploy": ("cli.deploy", "set a project's production version (what /classify answers with), or roll it back"),
    "params": ("cli.params", "show or set a project's training parameters"),
    "retrain": ("cli.retrain", "train a project's model now (its parameters, or the accurate preset)"),
    "simulate": ("cli.simulate", "replay active learning on a class-per-folder tree (accuracy per round)"),
    "label-errors": ("cli.label_errors", "rank suspected wrong labels in a class-per-folder tree"),
    "similar": ("cli.similar", "a task's most similar photos in its project (label, prediction, confidence)"),
    "export": ("cli.export", "write a model version as one ONNX graph (+ labels, model card)"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tasveer", description="Active-learning image classification around Label Studio."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for verb, (module, help_text) in COMMANDS.items():
        if only in (None, verb):
            importlib.import_module(module).register(sub)
        else:  # listed in --help without importing the module
            sub.add_parser(verb, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    verb = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(verb if verb in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
