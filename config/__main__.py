"""`python -m config --markdown`: print the README's settings table (from config/variables.py)."""

from __future__ import annotations

import argparse

from config.markdown import settings_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config", description="tasveer's environment variables")
    parser.add_argument("--markdown", action="store_true", help="print the README's settings table")
    args = parser.parse_args(argv)
    if not args.markdown:
        parser.print_help()
        return 2
    print(settings_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
