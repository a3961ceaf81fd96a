"""The node's TOML configuration: typed settings, defaults and validation.

Every problem is reported as a ConfigError that names the offending key, e.g.
``[node] port: expected an integer from 1 to 65535, got 'abc'``.
"""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVICES = ("store", "find", "move", "get")
DUPLICATE_POLICIES = ("keep_first", "replace", "reject")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong kind."""


@dataclass(frozen=True)
class Peer:
    """A remote application entity the node knows: who may call, where to send."""

    ae_title: str
    host: str
    port: int
    allow: frozenset[str]
    forward_results: bool = False


@dataclass(frozen=True)
class NodeSettings:
    ae_title: str = "ISPNODE"
    host: str = "127.0.0.1"
    port: int = 11112
    storage_dir: Path = Path("var/isp-node")
    workers: int = 1


@dataclass(frozen=True)
class NetworkSettings:
    acse_timeout: float = 10.0
    dimse_timeout: float = 30.0
    network_timeout: float = 60.0
    max_pdu_size: int = 262144
    max_associations: int = 32
    max_associations_per_host: int = 8


@dataclass(frozen=True)
class SecuritySettings:
    accept_unknown: bool = False


@dataclass(frozen=True)
class SeriesSettings:
    quiet_seconds: float = 10.0
    localizer_image_types: tuple[str, ...] = ("LOCALIZER",)
    localizer_descriptions: tuple[str, ...] = ("loc", "scout", "survey", "tripilot")


@dataclass(frozen=True)
class StorageSettings:
    duplicate_policy: str = "keep_first"


@dataclass(frozen=True)
class JobSettings:
    planner: str = "isp_node.cascade.planner:make_planner"
    max_attempts: int = 2


@dataclass(frozen=True)
class ForwardingSettings:
    """Retries of result objects sent to peers with forward_results = true."""

    retry_initial_seconds: float = 2.0
    retry_max_seconds: float = 300.0


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"


@dataclass(frozen=True)
class Config:
    node: NodeSettings = field(default_factory=NodeSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    series: SeriesSettings = field(default_factory=SeriesSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    jobs: JobSettings = field(default_factory=JobSettings)
    forwarding: ForwardingSettings = field(default_factory=ForwardingSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    peers: tuple[Peer, ...] = ()

    def peer(self, ae_title: str) -> Peer | None:
        """The configured peer with this AE title, or None."""
        for peer in self.peers:
            if peer.ae_title == ae_title:
                return peer
        return None

    @property
    def result_peers(self) -> tuple[Peer, ...]:
        """The peers that receive the node's result objects."""
        return tuple(p for p in self.peers if p.forward_results)


def _ae_title(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 16 or "\\" in value:
        raise ConfigError(f"{where}: expected an AE title of 1-16 characters, got {value!r}")
    if not all(32 <= ord(c) < 127 for c in value):
        raise ConfigError(f"{where}: AE title must be printable ASCII, got {value!r}")
    return value.strip()


def _int(where: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where}: expected an integer from {low} to {high}, got {value!r}")
    return value


def _number(where: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"{where}: expected a number from {low} to {high}, got {value!r}")
    return float(value)


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _str(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _str_list(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a list of non-empty strings, got {value!r}")
    return tuple(value)


def _choice(where: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{where}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def _table(raw: dict, name: str, known: set[str]) -> dict:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}]: expected a table, got {table!r}")
    for key in table:
        if key not in known:
            raise ConfigError(f"[{name}] {key}: unknown key (known: {', '.join(sorted(known))})")
    return table


def _peer(index: int, raw: Any) -> Peer:
    where = f"[[peers]] #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table, got {raw!r}")
    known = {"ae_title", "host", "port", "allow", "forward_results"}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{where} {key}: unknown key (known: {', '.join(sorted(known))})")
    for key in ("ae_title", "host", "port"):
        if key not in raw:
            raise ConfigError(f"{where} {key}: missing")
    allow = _str_list(f"{where} allow", raw.get("allow", list(SERVICES)))
    for service in allow:
        _choice(f"{where} allow", service, SERVICES)
    return Peer(
        ae_title=_ae_title(f"{where} ae_title", raw["ae_title"]),
        host=_str(f"{where} host", raw["host"]),
        port=_int(f"{where} port", raw["port"], 1, 65535),
        allow=frozenset(allow),
        forward_results=_bool(f"{where} forward_results", raw.get("forward_results", False)),
    )


def config_from_dict(raw: dict, base_dir: Path = Path(".")) -> Config:
    """Validate a parsed TOML document; relative storage_dir is taken from base_dir."""
    tables = {"node", "network", "security", "series", "storage", "jobs", "forwarding", "logging",
              "peers"}
    for key in raw:
        if key not in tables:
            raise ConfigError(f"[{key}]: unknown table (known: {', '.join(sorted(tables))})")
    d = Config()

    t = _table(raw, "node", {"ae_title", "host", "port", "storage_dir", "workers"})
    storage_dir = Path(_str("[node] storage_dir", t.get("storage_dir", str(d.node.storage_dir))))
    node = NodeSettings(
        ae_title=_ae_title("[node] ae_title", t.get("ae_title", d.node.ae_title)),
        host=_str("[node] host", t.get("host", d.node.host)),
        port=_int("[node] port", t.get("port", d.node.port), 0, 65535),
        storage_dir=storage_dir if storage_dir.is_absolute() else base_dir / storage_dir,
        workers=_int("[node] workers", t.get("workers", d.node.workers), 1, 64),
    )

    t = _table(raw, "network", set(NetworkSettings.__dataclass_fields__))
    n = d.network
    network = NetworkSettings(
        acse_timeout=_number("[network] acse_timeout", t.get("acse_timeout", n.acse_timeout), 0.5, 600),
        dimse_timeout=_number("[network] dimse_timeout", t.get("dimse_timeout", n.dimse_timeout), 0.5, 3600),
        network_timeout=_number("[network] network_timeout", t.get("network_timeout", n.network_timeout), 0.5, 3600),
        max_pdu_size=_int("[network] max_pdu_size", t.get("max_pdu_size", n.max_pdu_size), 4096, 4194304),
        max_associations=_int("[network] max_associations", t.get("max_associations", n.max_associations), 1, 1000),
        max_associations_per_host=_int(
            "[network] max_associations_per_host",
            t.get("max_associations_per_host", n.max_associations_per_host), 1, 1000,
        ),
    )

    t = _table(raw, "security", {"accept_unknown"})
    security = SecuritySettings(
        accept_unknown=_bool("[security] accept_unknown", t.get("accept_unknown", False))
    )

    t = _table(raw, "series", set(SeriesSettings.__dataclass_fields__))
    s = d.series
    series = SeriesSettings(
        quiet_seconds=_number("[series] quiet_seconds", t.get("quiet_seconds", s.quiet_seconds), 0.1, 86400),
        localizer_image_types=_str_list(
            "[series] localizer_image_types", t.get("localizer_image_types", list(s.localizer_image_types))
        ),
        localizer_descriptions=_str_list(
            "[series] localizer_descriptions", t.get("localizer_descriptions", list(s.localizer_descriptions))
        ),
    )

    t = _table(raw, "storage", {"duplicate_policy"})
    storage = StorageSettings(
        duplicate_policy=_choice(
            "[storage] duplicate_policy", t.get("duplicate_policy", "keep_first"), DUPLICATE_POLICIES
        )
    )

    t = _table(raw, "jobs", {"planner", "max_attempts"})
    planner = _str("[jobs] planner", t.get("planner", d.jobs.planner))
    if ":" not in planner:
        raise ConfigError(f"[jobs] planner: expected 'module:factory', got {planner!r}")
    jobs = JobSettings(
        planner=planner,
        max_attempts=_int("[jobs] max_attempts", t.get("max_attempts", d.jobs.max_attempts), 1, 100),
    )

    t = _table(raw, "forwarding", set(ForwardingSettings.__dataclass_fields__))
    f = d.forwarding
    retry_initial = _number("[forwarding] retry_initial_seconds",
                            t.get("retry_initial_seconds", f.retry_initial_seconds), 0.05, 3600)
    forwarding = ForwardingSettings(
        retry_initial_seconds=retry_initial,
        retry_max_seconds=_number("[forwarding] retry_max_seconds",
                                  t.get("retry_max_seconds", f.retry_max_seconds), retry_initial, 86400),
    )

    t = _table(raw, "logging", {"level"})
    logging_ = LoggingSettings(
        level=_choice("[logging] level", t.get("level", "INFO"), ("DEBUG", "INFO", "WARNING", "ERROR"))
    )

    raw_peers = raw.get("peers", [])
    if not isinstance(raw_peers, list):
        raise ConfigError("[[peers]]: expected an array of tables")
    peers = tuple(_peer(i, p) for i, p in enumerate(raw_peers))
    seen: set[str] = set()
    for peer in peers:
        if peer.ae_title in seen:
            raise ConfigError(f"[[peers]] ae_title: {peer.ae_title!r} is listed twice")
        seen.add(peer.ae_title)

    return Config(node, network, security, series, storage, jobs, forwarding, logging_, peers)


def load_config(path: Path) -> Config:
    """Read and validate a TOML configuration file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return config_from_dict(raw, base_dir=path.resolve().parent)
