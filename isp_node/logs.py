"""Logging set-up shared by the node's main process and its workers."""

import logging
import sys

FORMAT = "%(asctime)s %(levelname)-7s %(name)s[%(process)d]: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr (the journal, under systemd) in one format everywhere."""
    logging.basicConfig(level=level, format=FORMAT, stream=sys.stderr, force=True)
    # pynetdicom logs every PDU at INFO; the node logs one line per association.
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
