"""The sources as Python reads them: no name used that is never defined, no import or
definition left unused or shadowed (pyflakes), in the package, its tests and its scripts."""

from pathlib import Path

from pyflakes.api import checkPath
from pyflakes.reporter import Reporter

ROOT = Path(__file__).resolve().parents[1]


class _Collected(Reporter):
    """Pyflakes' reports gathered as lines instead of printed."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def unexpectedError(self, filename, message) -> None:
        self.lines.append(f"{filename}: {message}")

    def syntaxError(self, filename, message, lineno, offset, text) -> None:
        self.lines.append(f"{filename}:{lineno}: {message}")

    def flake(self, message) -> None:
        self.lines.append(str(message))


def test_the_sources_have_no_unused_undefined_or_shadowed_names():
    reports = _Collected()
    for folder in ("isp_node", "tests", "bench", "docs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            checkPath(str(path), reports)
    assert not reports.lines, "\n".join(reports.lines)
