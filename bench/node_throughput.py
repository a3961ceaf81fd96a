"""Measure the node's C-STORE throughput and how fast a completed series starts its job.

    python bench/node_throughput.py [--images 360] [--series 20]

Starts `isp-node serve` on a free loopback port with a temporary storage
directory and drives it with dcmtk's storescu (one, then four in parallel),
then sends `--series` small localizers one association each and reports the
time from each storescu's exit (after A-RELEASE) to its job starting.
"""

import argparse
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import dcmtk, port_open, write_config  # noqa: E402

import pydicom  # noqa: E402

from isp_node.simulation.phantom import phantom_localizer, write_series  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def storescu(port: int, files: list[Path]) -> subprocess.Popen:
    return subprocess.Popen([dcmtk("storescu"), "-aet", "SCANNER", "-aec", "ISPNODE",
                             "127.0.0.1", str(port), *map(str, files)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def series_files(root: Path, count: int, per_series: int, seed: int) -> list[list[Path]]:
    """`count` series of `per_series` 256x256 images each (3 orientations)."""
    per_orientation = max(per_series // 3, 1)
    return [write_series(phantom_localizer(seed=seed + i, per_orientation=per_orientation,
                                           matrix=256, patient_id=f"B{seed + i}"),
                         root / f"s{seed + i}")
            for i in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=360, help="images per throughput run")
    parser.add_argument("--series", type=int, default=20, help="series for the latency run")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="isp-node-bench-"))
    port = free_port()
    config = work / "node.toml"
    peers = [{"ae_title": "SCANNER", "host": "127.0.0.1", "port": 11113,
              "allow": ["store", "find", "move", "get"]}]
    write_config(config, work / "storage", port, peers, logging={"level": "WARNING"})
    node = subprocess.Popen([sys.executable, "-m", "isp_node", "serve", "--config", str(config)])
    try:
        while not port_open(port):
            time.sleep(0.1)
        per_series = 36
        n_series = max(args.images // per_series, 4)
        batches = series_files(work / "one", n_series, per_series, seed=1000)
        files = [f for batch in batches for f in batch]
        started = time.monotonic()
        assert storescu(port, files).wait() == 0
        one = len(files) / (time.monotonic() - started)

        batches = series_files(work / "four", n_series, per_series, seed=2000)
        groups = [[f for batch in batches[i::4] for f in batch] for i in range(4)]
        started = time.monotonic()
        procs = [storescu(port, group) for group in groups]
        assert all(p.wait() == 0 for p in procs)
        four = sum(map(len, groups)) / (time.monotonic() - started)

        latencies = []
        db = sqlite3.connect(work / "storage" / "isp-node.sqlite")
        for batch in series_files(work / "latency", args.series, 9, seed=3000):
            proc = storescu(port, batch)
            assert proc.wait() == 0
            released = time.time()
            series_uid = pydicom.dcmread(batch[0], stop_before_pixels=True).SeriesInstanceUID
            while True:
                row = db.execute("SELECT started_at FROM jobs WHERE series_uid = ? AND "
                                 "started_at IS NOT NULL", (series_uid,)).fetchone()
                if row:
                    latencies.append(row[0] - released)
                    break
                time.sleep(0.005)
        image_kb = files[0].stat().st_size / 1024
        print(f"images: {len(files)} per run, {image_kb:.0f} KB each (256x256, 16 bit)")
        print(f"C-STORE, 1 storescu:          {one:7.1f} images/s")
        print(f"C-STORE, 4 parallel storescu: {four:7.1f} images/s")
        lat = sorted(latencies)
        print(f"release -> job start over {len(lat)} series: median "
              f"{statistics.median(lat) * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms "
              "(negative: the job started before storescu had exited)")
    finally:
        node.terminate()
        node.wait(60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
