"""Service settings, read once from environment variables.

Every setting, its variable and its default (documented here and in `capstan serve --help`):

| variable | default | meaning |
|---|---|---|
| `CAPSTAN_HOST` / `CAPSTAN_PORT` | 127.0.0.1 / 8000 | where `capstan serve` listens |
| `CAPSTAN_DATA_DIR` | ./var | SQLite traces `capstan.db` and `media/<run_id>/` |
| `CAPSTAN_DATABASE_URL` | (unset) | `postgresql://...` instead of SQLite (needs psycopg) |
| `CAPSTAN_API_TOKEN` | (unset) | bearer token for /v1; required when listening beyond loopback |
| `CAPSTAN_MAX_CONCURRENT_RUNS` | 2 | runs executing at once (across sessions) |
| `CAPSTAN_MAX_QUEUED_RUNS` | 32 | runs waiting, at most half of them one session's; beyond that new runs get 429 |
| `CAPSTAN_MAX_SESSIONS` | 16 | live sessions; beyond that new sessions get 429 |
| `CAPSTAN_SESSION_IDLE_S` | 86400 | a session unused this long is closed when another is created, and not restored at start (0: never) |
| `CAPSTAN_MAX_COMMAND_CHARS` | 2000 | longest command text |
| `CAPSTAN_MAX_CODE_BYTES` | 50000 | largest program |
| `CAPSTAN_MAX_SCENE_OBJECTS` | 12 | most objects in one scene |
| `CAPSTAN_MAX_BODY_BYTES` | 8000000 | largest request body; a larger one gets 413 before anything reads it |
| `CAPSTAN_RUN_TIMEOUT_S` | 120 | sandbox time limit per program execution |
| `CAPSTAN_PERCEPTION` | truth | `truth` or `camera` (primitives perception mode) |
| `CAPSTAN_SANDBOX_POOL` | 2 | warm sandbox workers |
| `CAPSTAN_SANDBOX_ISOLATION` | auto | OS boundary for policy code: `auto` (bubblewrap, else Landlock, else refuse to start), `bwrap`, `landlock`, or `unsafe-process` (none; never for untrusted use) |
| `CAPSTAN_DRY_RUN` | 1 | rehearse each generated program headless on a world snapshot before it runs (0: run it directly); a real robot is rehearsed on its twin whatever this says |
| `CAPSTAN_UNSAFE_SKIP_TWIN` | 0 | 1: UNSAFE, a real robot's programs no longer need a passing rehearsal on its simulated twin: hand-written ones move it directly, generated ones are rehearsed only as `CAPSTAN_DRY_RUN` says |
| `CAPSTAN_CANDIDATES` | 3 | programs per command (the greedy one + sampled) when the first fails its dry run; 1: never sample |
| `CAPSTAN_SAMPLE_COMPOSITIONAL` | 0 | 1: sample more candidates for compositional commands too, even when the first passed its dry run |
| `CAPSTAN_PREFILL` | 1 | while idle, have the local model read a session's scene and earlier turns before its next command arrives (0: only when the command comes) |
| `CAPSTAN_MEDIA` | 1 | 0 disables frames/GIF/MP4 recording |
| `CAPSTAN_VIDEO_VIEW` | angled | camera used for frames and video (`top` or `angled`) |
| `CAPSTAN_MAX_FRAMES` | 240 | most frames recorded per run |
| `CAPSTAN_ROBOTS` | (unset) | remote robots, `name=http://host:port[,name=url...]` (robot agents; see `capstan robot-agent`) |
| `CAPSTAN_ROBOT_TOKEN` | (unset) | bearer token sent to every robot agent |
| `CAPSTAN_ENVELOPE` | (unset) | safety envelopes, a JSON file `{"robot name": {envelope}}` (docs/CONTRACTS.md); a remote robot without one gets the conservative default, the sim none; a missing or invalid file stops the start |
| `CAPSTAN_APPROVAL` | none | operator approval before a program moves a robot: `required` (every robot but the sim), `none`, or per robot `name=required,other=none` (unlisted robots: none) |
| `CAPSTAN_APPROVAL_TIMEOUT_S` | 300 | a program nobody approved or rejected within this is rejected (by "timeout") |
| `CAPSTAN_OPERATORS` | (unset) | operators file (`capstan operators add NAME`, re-read when it changes): an approval, a rejection or a robot action (clear a watchdog stop, recover) then needs the operator's own token (`X-Operator-Token`) and is signed with their name; unset, approvals are signed with any stated name (unverified) and robot actions are refused; a missing, invalid or empty file stops the start |

The LLM provider has its own variables (`CAPSTAN_LLM`, `CAPSTAN_CASSETTE`, ... see docs/CONTRACTS.md).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capstan.primitives.envelope import Envelope
    from capstan.service.operators import Operators

from capstan.service.robots import SIM


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable and the fix."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("var")
    database_url: str | None = None
    api_token: str | None = None
    max_concurrent_runs: int = 2
    max_queued_runs: int = 32
    max_sessions: int = 16
    session_idle_s: float = 86400.0
    max_command_chars: int = 2000
    max_code_bytes: int = 50_000
    max_scene_objects: int = 12
    max_body_bytes: int = 8_000_000
    run_timeout_s: float = 120.0
    perception: str = "truth"
    sandbox_pool: int = 2
    dry_run: bool = True
    unsafe_skip_twin: bool = False
    candidates: int = 3
    sample_compositional: bool = False
    prefill: bool = True
    media: bool = True
    video_view: str = "angled"
    max_frames: int = 240
    robots: str = ""
    robot_token: str | None = None
    envelope: str | None = None
    approval: str = "none"
    approval_timeout_s: float = 300.0
    operators: str | None = None

    @property
    def remote_robots(self) -> dict[str, str]:
        """{robot name: agent URL} from CAPSTAN_ROBOTS."""
        out: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in self.robots.split(","))):
            name, _, url = item.partition("=")
            out[name.strip()] = url.strip().rstrip("/")
        return out

    def robot_envelopes(self) -> dict[str, Envelope]:
        """{robot name: Envelope} from CAPSTAN_ENVELOPE ({} without it). Fails closed: a missing or
        invalid file, or one naming a robot that is not configured (a typo would leave the real
        robot on the default), is a ConfigError."""
        if not self.envelope:
            return {}
        from capstan.primitives.envelope import envelopes_from_file

        try:
            envelopes = envelopes_from_file(self.envelope)
        except ValueError as exc:
            raise ConfigError(f"CAPSTAN_ENVELOPE: {exc}") from None
        known = ("sim", *self.remote_robots)
        unknown = sorted(set(envelopes) - set(known))
        if unknown:
            raise ConfigError(
                f"CAPSTAN_ENVELOPE: {self.envelope} has envelopes for {unknown}, which are not configured "
                f"robots ({', '.join(known)}; remote robots come from CAPSTAN_ROBOTS)"
            )
        return envelopes

    def load_operators(self) -> Operators | None:
        """The operators who may decide approvals (None: decisions are signed by name, unverified)."""
        if not self.operators:
            return None
        from capstan.service.operators import Operators, OperatorsError

        try:
            return Operators(self.operators)
        except OperatorsError as exc:
            raise ConfigError(f"CAPSTAN_OPERATORS: {exc}") from None

    def approval_required(self, robot: str) -> bool:
        """Whether a program must be approved by an operator before it moves `robot`."""
        value = self.approval.strip()
        if value in ("none", "required"):
            return value == "required" and robot != SIM
        return _approval_map(value).get(robot) == "required"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "capstan.db"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if env is None else env
        values: dict = {}
        for f in fields(cls):
            var = "CAPSTAN_" + f.name.upper()
            if var not in env or env[var] == "":
                continue
            raw = env[var]
            values[f.name] = _parse(var, raw, f.default)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.perception not in ("truth", "camera"):
            raise ConfigError(f"CAPSTAN_PERCEPTION={self.perception!r}: use 'truth' or 'camera'")
        if self.video_view not in ("top", "angled"):
            raise ConfigError(f"CAPSTAN_VIDEO_VIEW={self.video_view!r}: use 'top' or 'angled'")
        for name, url in self.remote_robots.items():
            if not (name.replace("-", "").replace("_", "").isalnum() and len(name) <= 40) or name == "sim":
                raise ConfigError(
                    f"CAPSTAN_ROBOTS: {name!r} is not a usable robot name (letters, digits, - and _; not "
                    "'sim')"
                )
            if not url.startswith(("http://", "https://")):
                raise ConfigError(
                    f"CAPSTAN_ROBOTS: robot {name!r} needs an http(s):// agent URL, got {url!r}"
                )
        self._validate_approval()
        if self.session_idle_s < 0:
            raise ConfigError("CAPSTAN_SESSION_IDLE_S must be 0 (never expire) or a number of seconds")
        for name in ("max_concurrent_runs", "max_sessions", "sandbox_pool", "candidates"):
            if getattr(self, name) < 1:
                raise ConfigError(f"CAPSTAN_{name.upper()} must be at least 1")
        if self.max_body_bytes < self.max_code_bytes + 1024:
            raise ConfigError(
                f"CAPSTAN_MAX_BODY_BYTES={self.max_body_bytes} leaves no room for a program of "
                f"CAPSTAN_MAX_CODE_BYTES={self.max_code_bytes}: make it larger"
            )
        self.robot_envelopes()
        self.load_operators()

    def _validate_approval(self) -> None:
        # a typo must not leave a robot moving without approval: every name and value must be known
        if not self.approval_timeout_s > 0:
            raise ConfigError("CAPSTAN_APPROVAL_TIMEOUT_S must be a positive number of seconds")
        value = self.approval.strip()
        if value in ("none", "required"):
            return
        known = (SIM, *self.remote_robots)
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, eq, mode = (x.strip() for x in item.partition("="))
            if not eq or mode not in ("required", "none"):
                raise ConfigError(
                    f"CAPSTAN_APPROVAL: {item!r} is not 'name=required' or 'name=none' (or use "
                    "'required' or 'none' for every robot)"
                )
            if name not in known:
                raise ConfigError(
                    f"CAPSTAN_APPROVAL names robot {name!r}, which is not one of {', '.join(known)} "
                    "(CAPSTAN_ROBOTS)"
                )

    def check_listen(self, host: str | None = None) -> None:
        """Refuse to serve beyond loopback without a token."""
        host = host or self.host
        if not is_loopback(host) and not self.api_token:
            raise ConfigError(
                f"refusing to listen on {host!r} without authentication: set CAPSTAN_API_TOKEN to a secret "
                "(clients then send 'Authorization: Bearer <token>'), or listen on 127.0.0.1"
            )


def _approval_map(value: str) -> dict[str, str]:
    """{robot: "required" | "none"} from CAPSTAN_APPROVAL's per-robot form."""
    pairs = (item.partition("=") for item in value.split(",") if item.strip())
    return {name.strip(): mode.strip() for name, _, mode in pairs}


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse(var: str, raw: str, default):
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw)
        return raw
    except ValueError:
        kind = type(default).__name__ if default is not None else "str"
        raise ConfigError(f"{var}={raw!r} is not a valid {kind}") from None
