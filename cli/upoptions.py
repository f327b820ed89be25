"""`tasveer up`'s options: where the servers listen and keep their data, the database, the admin
login, the project and what to import into it (cli/up.py registers the verb with them)."""

from __future__ import annotations

import argparse

from sync.project import DEFAULT_LABELS, SAMPLING

DEFAULT_TITLE = "tasveer"


def server_options(parser: argparse.ArgumentParser) -> None:
    """Where the servers listen and keep their data, the database, the admin login."""
    parser.add_argument("--port", type=int, default=8080, help="Label Studio port (default: 8080)")
    parser.add_argument("--backend-port", type=int, default=9090, help="ML backend port (default: 9090)")
    parser.add_argument("--host", default="127.0.0.1", help="address both servers listen on (default: 127.0.0.1)")
    parser.add_argument("--data-dir", default="./var", help="where everything is stored (default: ./var)")
    parser.add_argument(
        "--database",
        metavar="DB",
        help="Label Studio's database: sqlite (default), postgres (127.0.0.1:5432, user postgres, database "
        "tasveer_<data dir>, made if missing) or postgresql://user[:password]@host[:port]/name; "
        "DATA_DIR keeps its choice",
    )
    parser.add_argument(
        "--username", help="admin login (email); default admin@tasveer.local, or the one of an existing DATA_DIR"
    )
    parser.add_argument("--password", help="admin password; default: generated once and kept in DATA_DIR")


def project_options(parser: argparse.ArgumentParser) -> None:
    """The project's labels, title and sampling, and what to import into it."""
    parser.add_argument(
        "--labels",
        default=",".join(DEFAULT_LABELS),
        help=f"comma-separated class labels (default: {','.join(DEFAULT_LABELS)})",
    )
    parser.add_argument("--title", default=DEFAULT_TITLE, help=f"project title (default: {DEFAULT_TITLE})")
    parser.add_argument(
        "--sampling",
        choices=sorted(SAMPLING),
        default="uncertainty",
        help="which task 'Label All Tasks' serves next: uncertainty = the least confident (default), "
        "sequential = by task id, uniform = at random ('Label tasks as displayed' in Needs review: "
        "the acquisition strategy's order)",
    )
    parser.add_argument("--images", metavar="DIR", help="import the images under DIR after start-up")
    parser.add_argument(
        "--labels-from-folders",
        action="store_true",
        help="with --images: DIR/<class>/*.jpg, annotate each image with its folder name",
    )
