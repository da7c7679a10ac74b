"""Settings from the environment and the listen-address guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from capstan.service.config import ConfigError, Settings


def test_defaults_and_env():
    s = Settings.from_env({})
    assert (s.host, s.port, s.max_concurrent_runs, s.data_dir) == ("127.0.0.1", 8000, 2, Path("var"))
    s = Settings.from_env(
        {"CAPSTAN_MAX_CONCURRENT_RUNS": "4", "CAPSTAN_MEDIA": "0", "CAPSTAN_DATA_DIR": "/x"}
    )
    assert (s.max_concurrent_runs, s.media, s.db_path) == (4, False, Path("/x/capstan.db"))


def test_bad_values_name_the_variable():
    with pytest.raises(ConfigError, match="CAPSTAN_PORT"):
        Settings.from_env({"CAPSTAN_PORT": "eighty"})
    with pytest.raises(ConfigError, match="CAPSTAN_PERCEPTION"):
        Settings.from_env({"CAPSTAN_PERCEPTION": "psychic"})


def test_token_required_beyond_loopback():
    Settings.from_env({}).check_listen("127.0.0.1")
    Settings.from_env({}).check_listen("localhost")
    with pytest.raises(ConfigError, match="CAPSTAN_API_TOKEN"):
        Settings.from_env({}).check_listen("0.0.0.0")
    Settings.from_env({"CAPSTAN_API_TOKEN": "s3cret"}).check_listen("0.0.0.0")


def test_every_setting_is_documented():
    import dataclasses

    import capstan.service.config

    for f in dataclasses.fields(Settings):
        assert f"CAPSTAN_{f.name.upper()}" in capstan.service.config.__doc__, f.name


def test_remote_robots_are_parsed_and_checked():
    s = Settings.from_env({"CAPSTAN_ROBOTS": "lab=http://10.0.0.5:8100/, arm_2=https://arm2.local"})
    assert s.remote_robots == {"lab": "http://10.0.0.5:8100", "arm_2": "https://arm2.local"}
    assert Settings.from_env({}).remote_robots == {}
    for bad in ("sim=http://x", "lab=ftp://x", "la b=http://x", "lab"):
        with pytest.raises(ConfigError, match="CAPSTAN_ROBOTS"):
            Settings.from_env({"CAPSTAN_ROBOTS": bad})
