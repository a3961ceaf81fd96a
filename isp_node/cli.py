"""The `isp-node` command line."""

import argparse
import logging
import sys
from pathlib import Path

from isp_node import __version__
from isp_node.config import ConfigError, load_config
from isp_node.logs import configure_logging


def _serve(args: argparse.Namespace) -> int:
    from isp_node.service import serve

    config = load_config(args.config)
    configure_logging(config.logging.level)
    return serve(config)


def _demo(args: argparse.Namespace) -> int:
    from isp_node.demo import run_demo

    configure_logging("WARNING")
    return run_demo(Path(args.out) if args.out else None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isp-node",
        description="DICOM node that receives MR localizer series and plans brain scans.",
    )
    parser.add_argument("--version", action="version", version=f"isp-node {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the node in the foreground until SIGTERM/SIGINT",
        description="Run the DICOM node: accept C-ECHO/C-STORE/C-FIND/C-MOVE/C-GET from "
        "configured peers, store objects durably, plan completed localizer series in worker "
        "processes. SIGTERM or SIGINT stops new associations, lets running jobs finish, "
        "and exits 0.",
    )
    serve.add_argument("--config", required=True, type=Path, metavar="FILE",
                       help="TOML configuration (see config/isp-node.toml for every key)")
    serve.set_defaults(func=_serve)

    demo = commands.add_parser(
        "demo", help="run the whole job once on a temporary node and show the result",
        description="Start a node on a free loopback port, push a synthetic localizer "
        "series to it with C-STORE, wait for its job, query it back and print the outcome.",
    )
    demo.add_argument("--out", metavar="DIR",
                      help="keep the node's storage and outputs here (default: a temporary "
                      "directory that is printed)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"isp-node: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        logging.getLogger("isp_node").warning("interrupted")
        return 130
