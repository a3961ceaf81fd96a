"""Validation of DICOM UIDs received from the network (PS3.5 section 9.1)."""

import re

_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
MAX_UID_LENGTH = 64


def uid_problem(value: object) -> str | None:
    """Return why `value` is not a valid DICOM UID, or None when it is one."""
    if not isinstance(value, str) or value == "":
        return "missing"
    if len(value) > MAX_UID_LENGTH:
        return f"longer than {MAX_UID_LENGTH} characters"
    if not _UID.fullmatch(value):
        return "not digits and dots without leading zeros"
    return None


def is_valid_uid(value: object) -> bool:
    """True when `value` is a syntactically valid DICOM UID."""
    return uid_problem(value) is None
