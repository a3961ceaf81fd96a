"""Configuration parsing: defaults, the shipped file, and errors that name the key."""

from pathlib import Path

import pytest

from isp_node.config import ConfigError, config_from_dict, load_config

SHIPPED = Path(__file__).parent.parent / "config" / "isp-node.toml"


def test_shipped_config_loads_with_documented_defaults():
    config = load_config(SHIPPED)
    assert config.node.ae_title == "ISPNODE"
    assert config.node.host == "127.0.0.1" and config.node.port == 11112
    assert config.security.accept_unknown is False
    assert config.series.quiet_seconds == 10.0
    assert {p.ae_title for p in config.peers} == {"SCANNER", "PACS"}
    assert config.forwarding.retry_initial_seconds == 2.0
    assert config.forwarding.retry_max_seconds == 300.0
    assert {p.ae_title for p in config.result_peers} == {"SCANNER", "PACS"}


def test_empty_config_gets_defaults_and_relative_storage_is_beside_the_file(tmp_path):
    config = config_from_dict({}, base_dir=tmp_path)
    assert config.node.storage_dir == tmp_path / "var/isp-node"
    assert config.peers == ()
    assert config.storage.duplicate_policy == "keep_first"


@pytest.mark.parametrize("raw, message", [
    ({"node": {"port": "abc"}}, "[node] port"),
    ({"node": {"port": 70000}}, "[node] port"),
    ({"node": {"ae_title": "A" * 17}}, "[node] ae_title"),
    ({"node": {"prot": 1}}, "[node] prot: unknown key"),
    ({"nodes": {}}, "[nodes]: unknown table"),
    ({"security": {"accept_unknown": "yes"}}, "[security] accept_unknown"),
    ({"series": {"quiet_seconds": -1}}, "[series] quiet_seconds"),
    ({"storage": {"duplicate_policy": "overwrite"}}, "[storage] duplicate_policy"),
    ({"jobs": {"planner": "no_colon"}}, "[jobs] planner"),
    ({"forwarding": {"retry_initial_seconds": 0}}, "[forwarding] retry_initial_seconds"),
    ({"forwarding": {"retry_initial_seconds": 10, "retry_max_seconds": 5}},
     "[forwarding] retry_max_seconds"),
    ({"peers": [{"ae_title": "X", "host": "h"}]}, "[[peers]] #1 port: missing"),
    ({"peers": [{"ae_title": "X", "host": "h", "port": 1, "allow": ["push"]}]},
     "[[peers]] #1 allow"),
    ({"peers": [{"ae_title": "X", "host": "h", "port": 1},
                {"ae_title": "X", "host": "g", "port": 2}]}, "listed twice"),
])
def test_errors_name_the_key(raw, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert message in str(info.value)


def test_cli_reports_bad_config_and_exits_2(tmp_path, capsys):
    from isp_node.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text("[node]\nport = 'abc'\n")
    assert main(["serve", "--config", str(bad)]) == 2
    assert "[node] port" in capsys.readouterr().err
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "not found" in capsys.readouterr().err
