"""`capstan`: serve the HTTP API, run one command in process, show a stored trace, run benchmarks."""

from __future__ import annotations

import argparse
import codecs
import datetime
import importlib
import json
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path

from capstan.sandbox.isolation import NoIsolationError
from capstan.service.config import ConfigError, Settings

BENCHES = ("sim", "sandbox", "robot", "llm", "e2e", "humaneval", "robocode", "tasks", "compare")
SETTINGS_HELP = (
    "settings come from environment variables (CAPSTAN_DATA_DIR, CAPSTAN_API_TOKEN, "
    "CAPSTAN_MAX_CONCURRENT_RUNS, CAPSTAN_LLM, ...); see capstan/service/config.py and `python -m "
    "capstan.llm.config`"
)


def _settings_table() -> str:
    """The service settings table from capstan/service/config.py's docstring, as plain text for --help."""
    import capstan.service.config

    lines = ["service settings (environment variables):"]
    for row in (capstan.service.config.__doc__ or "").splitlines():
        if row.startswith("| `CAPSTAN"):
            var, default, meaning = (c.strip().replace("`", "") for c in row.strip("|").split("|"))
            lines.append(f"  {var:30s} {default:17s} {meaning}")
    return "\n".join(lines) + "\nLLM settings: python -m capstan.llm.config"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from capstan.service.api import create_app
    from capstan.service.deps import redact_access_tokens
    from capstan.service.service import Service
    from capstan.service.serving import GRACEFUL_S, StoppingRunsFirst

    settings = Settings.from_env(host=args.host, port=args.port)
    settings.check_listen()
    _say(f"capstan: starting (data in {settings.data_dir.resolve()})")
    service = Service(settings, progress=lambda m: _say("capstan: " + m), warm_up=not args.no_warm_up)
    app = create_app(service)
    _say(f"capstan: serving on http://{settings.host}:{settings.port}/  (API docs: /docs)")
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=GRACEFUL_S,
    )
    logging.getLogger("uvicorn.access").addFilter(redact_access_tokens)  # after Config set logging up
    try:
        StoppingRunsFirst(config, service.runs.stop_all).run()
    finally:
        service.close()
    return 0


def cmd_robot_agent(args: argparse.Namespace) -> int:
    import uvicorn

    from capstan.service.agent_watchdog import heartbeat_limit_problem
    from capstan.service.config import is_loopback

    if not is_loopback(args.host) and not args.token:
        raise ConfigError(
            f"refusing to serve a robot on {args.host!r} without --token (or listen on 127.0.0.1)"
        )
    problem = heartbeat_limit_problem(args.heartbeat_ms, args.unsafe_no_heartbeat, "--unsafe-no-heartbeat")
    if problem:
        raise ConfigError(f"--heartbeat-ms {args.heartbeat_ms}: {problem}")
    if args.unsafe_no_heartbeat:
        _say(
            "capstan robot-agent: UNSAFE: heartbeat watchdog off; a lost service link will not stop the robot"
        )
    app, what = _agent_app(args)
    _say(
        f"capstan robot-agent: {what} on http://{args.host}:{args.port}/v1/robot "
        f"(use it with CAPSTAN_ROBOTS=NAME=http://{args.host}:{args.port})"
    )
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    finally:
        app.state.world.close()
        if getattr(app.state, "simulator", None) is not None:
            app.state.simulator.close()
    return 0


def _agent_app(args: argparse.Namespace):
    """The agent app for --backend, and what it serves in words."""
    franka_flags = args.franka_host or args.franka_sim or args.calibration
    if args.backend == "sim":
        if franka_flags:
            raise ConfigError("--franka-host, --franka-sim and --calibration need --backend franka")
        from capstan.service.robot_agent import sim_agent_app

        envelope = _agent_envelope(args.envelope)
        app = sim_agent_app(_scene(args), args.token, envelope, **_heartbeat(args))
        return app, "a PyBullet world"
    if args.scene or args.seed is not None:
        raise ConfigError(
            "--scene and --seed are for --backend sim; declare a Franka's objects with PUT /v1/robot/scene"
        )
    if bool(args.franka_host) == bool(args.franka_sim):
        raise ConfigError("--backend franka needs the robot's address (--franka-host HOST) or --franka-sim")
    from capstan.franka import CalibrationError, FrankyMissingError
    from capstan.primitives.errors import RobotUnavailableError
    from capstan.service.franka_agent import franka_agent_app

    try:
        app = franka_agent_app(
            args.franka_host,
            calibration_file=args.calibration,
            simulate=args.franka_sim,
            max_speed=args.max_speed,
            max_force_n=args.max_force,
            realtime=args.realtime,
            token=args.token,
            envelope=_agent_envelope(args.envelope),
            **_heartbeat(args),
        )
    except (CalibrationError, FrankyMissingError, RobotUnavailableError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    what = "franky-sim (MuJoCo)" if args.franka_sim else f"the Franka at {args.franka_host}"
    return app, what


def _heartbeat(args: argparse.Namespace) -> dict:
    return {"heartbeat_ms": args.heartbeat_ms, "unsafe_no_heartbeat": args.unsafe_no_heartbeat}


def _agent_envelope(path: str | None):
    """The envelope an agent enforces: the file's, else None (the default for its workspace)."""
    from capstan.primitives.envelope import Envelope

    try:
        return Envelope.from_file(path) if path else None
    except ValueError as exc:
        raise ConfigError(f"--envelope: {exc}") from None


def _scene(args: argparse.Namespace) -> dict:
    try:
        scene = json.loads(args.scene) if args.scene else {"objects": ["red block", "blue bowl"]}
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f'--scene is not valid JSON ({exc}); e.g. --scene \'{{"blocks": 3, "bowls": 2}}\''
        ) from None
    if not isinstance(scene, dict):
        raise ConfigError('--scene must be a JSON object such as \'{"objects": ["red block", "blue bowl"]}\'')
    if args.seed is not None:
        scene["seed"] = args.seed
    return scene


def _what_to_run(args: argparse.Namespace, settings: Settings) -> tuple[str, str]:
    """("program", its code) for --program FILE, else ("command", the command); within the limits
    the HTTP API keeps."""
    from capstan.service.schemas import command_text_problem

    if args.program and args.command:
        raise ConfigError("give a command or --program FILE, not both")
    if not args.program:
        if not args.command:
            raise ConfigError('give a command, e.g. capstan run "put the red block in the blue bowl"')
        problem = command_text_problem(args.command)
        if problem:
            raise ConfigError(f"{problem}: {args.command[:100]!r}")
        if len(args.command) > settings.max_command_chars:
            raise ConfigError(
                f"the command is {len(args.command)} characters; at most {settings.max_command_chars} "
                "are allowed (CAPSTAN_MAX_COMMAND_CHARS)"
            )
        return "command", args.command
    limit = settings.max_code_bytes
    try:
        with open(args.program, "rb") as f:
            raw = f.read(limit + len(codecs.BOM_UTF8) + 1)  # no more than it takes to know it is too big
        raw = raw.removeprefix(codecs.BOM_UTF8)  # an editor's byte-order mark is no code
        if len(raw) > limit:
            raise ConfigError(f"--program {args.program}: more than {limit} bytes (CAPSTAN_MAX_CODE_BYTES)")
        code = raw.decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"--program {args.program}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--program {args.program}: not UTF-8 text") from None
    if not code.strip():
        raise ConfigError(f"--program {args.program}: the file is empty")
    return "program", code


def cmd_run(args: argparse.Namespace) -> int:
    from capstan.service.service import Service

    settings = Settings.from_env(media=True if args.gif else None)
    scene = _scene(args)
    kind, text = _what_to_run(args, settings)  # before the model loads: a typo should not cost that wait
    if args.gif and not Path(args.gif).resolve().parent.is_dir():
        raise ConfigError(f"--gif {args.gif}: its folder does not exist")
    # a server may share this store; a program may ask the model nothing: it loads when asked
    service = Service(settings, progress=_say, recover=False, llm_on_first_use=kind == "program")
    try:
        from capstan.primitives.errors import RobotUnavailableError
        from capstan.service.robots import UnknownRobotError, scene_error_type, scene_refused, takes_scene

        if not takes_scene(args.robot) and (args.scene or args.seed is not None):
            raise ConfigError(scene_refused(args.robot, "drop --scene and --seed"))
        try:
            session = service.sessions.create(args.robot, scene if takes_scene(args.robot) else {})
        except scene_error_type() as exc:
            raise ConfigError(f"bad --scene or --seed: {exc}") from None
        except UnknownRobotError as exc:
            raise ConfigError(str(exc)) from None
        except RobotUnavailableError as exc:
            _say(f"capstan: {exc}")
            return 1
        run = service.runs.submit(session, kind, text)
        _say(f"run {run.id} ...")
        asked = None
        while not run.done.wait(0.2):  # no server here to approve through: ask on the terminal
            if run.pending is not None and run.pending is not asked:
                asked = run.pending
                _ask_approval(service, run.id, asked, args.robot)
        trace = _trace(service.store, run.id)
        print_trace(trace, brief=True)
        if args.gif:
            gif = settings.media_dir / run.id / "video.gif"
            if not gif.is_file():
                _say("no GIF was recorded")
            else:
                try:
                    shutil.copyfile(gif, args.gif)
                    _say(f"wrote {args.gif}")
                except OSError as exc:
                    _say(f"capstan: cannot write --gif {args.gif} ({exc.strerror}); the GIF is {gif}")
        return 0 if trace["status"] == "succeeded" else 1
    finally:
        service.close()


def _ask_approval(service, run_id: str, pending, robot: str) -> None:
    """Show a program awaiting approval (CAPSTAN_APPROVAL) and its dry runs; decide it from the answer.
    Anything but yes (also end of input, as without a terminal) rejects it."""
    import getpass

    from capstan.service.approvals import NotAwaitingApproval

    _say(f"--- program for robot {robot!r}, awaiting approval ---\n{pending.code}")
    for d in pending.dry_runs:
        verdict = f"refused ({d['rejected']})" if d["rejected"] else "ok"
        _say(f"dry run {d['index']}: {verdict}, moved: {'; '.join(d['moved']) or 'nothing'}")
    try:
        answer = input("run it on the robot? [y/N] ").strip().lower()
    except EOFError:
        answer = ""
    approved, by, verified, reason = answer in ("y", "yes"), f"{getpass.getuser()} (terminal)", False, ""
    if approved and service.operators is not None:  # only an operator's own token lets it move
        try:
            name = service.operators.who(getpass.getpass("your operator token: ").strip())
        except EOFError:
            name = None
        if name is None:
            approved, reason = False, "no operator's token (CAPSTAN_OPERATORS)"
        else:
            by, verified = name, True
    try:
        service.runs.decide(run_id, pending.attempt, approved, by, reason, verified)
    except NotAwaitingApproval:
        _say("too late: it was already decided (timeout or cancel)")


def _trace(store, run_id: str) -> dict | None:
    from capstan.service.trace import assemble

    row = store.get_run(run_id)
    return None if row is None else assemble(row, store.events(run_id))


def print_trace(t: dict, brief: bool = False) -> None:
    out = sys.stdout
    if not brief:
        print(f"run {t['id']}  session {t['session_id']}  {t['kind']}  status: {t['status']}", file=out)
        if t.get("command"):
            print(f"command: {t['command']}", file=out)
        for a in t["attempts"]:
            print(f"attempt {a.get('attempt')}: {'ok' if a.get('ok') else a.get('error')}", file=out)
            if a.get("approval"):  # who let it move the robot (or refused), and when
                d = a["approval"]
                when = datetime.datetime.fromtimestamp(d["at"]).isoformat(timespec="seconds")
                verdict = "approved" if d["approved"] else "rejected"
                who = d["by"] if d.get("verified") else f"{d['by']} (unverified)"
                why = f": {d['reason']}" if d["reason"] else ""
                print(f"  {verdict} by {who} at {when}{why}", file=out)
        print(f"llm calls: {len(t['llm_calls'])}", file=out)
    print("--- code ---", file=out)
    print(t.get("code") or "(none)", file=out)
    if not brief:
        print("--- primitive calls ---", file=out)
        for c in t["primitive_calls"]:
            res = c.get("error") or c.get("result")
            print(f"{c.get('name')}({json.dumps(c.get('args'))[1:-1]}) -> {json.dumps(res)[:120]}", file=out)
    print("--- said ---", file=out)
    for line in t["said"]:
        print(f"robot: {line}", file=out)
    if t.get("error"):
        e = t["error"]
        print(
            f"--- error ({e.get('kind')}) ---\n{e.get('message')}"
            + (f" (line {e['line']})" if e.get("line") else ""),
            file=out,
        )
    state = t.get("state_after") or {}
    if state.get("objects"):
        print("--- final scene ---", file=out)
        for name, o in sorted(state["objects"].items()):
            x, y, z = o["position"]
            print(f"{name:14s} x={x:+.3f} y={y:+.3f} z={z:+.3f}", file=out)
    print(f"status: {t['status']}", file=out)


def cmd_trace(args: argparse.Namespace) -> int:
    from capstan.service.store import open_store

    store = open_store(Settings.from_env())
    try:
        trace = _trace(store, args.run_id)
    finally:
        store.close()
    if trace is None:
        _say(f"no run {args.run_id!r} in {Settings.from_env().db_path} (list runs with GET /v1/runs)")
        return 1
    if args.json:
        json.dump(trace, sys.stdout, indent=2)
        print()
    else:
        print_trace(trace)
    return 0


def cmd_operators(args: argparse.Namespace) -> int:
    from capstan.service.operators import OperatorsError, add_operator, read_digests, remove_operator

    path = args.file or os.environ.get("CAPSTAN_OPERATORS")
    if not path:
        raise ConfigError("name the operators file: --file PATH or CAPSTAN_OPERATORS")
    try:
        if args.action != "list" and not args.name:
            raise ConfigError(f"capstan operators {args.action} NAME: say whose")
        if args.action == "add":
            token = add_operator(path, args.name)
            _say(f"operator {args.name!r} added to {path}; their token (shown only now):")
            print(token)
        elif args.action == "remove":
            remove_operator(path, args.name)
            _say(f"operator {args.name!r} removed from {path}; their token no longer works")
        else:
            print("\n".join(sorted(read_digests(Path(path)))))
    except OperatorsError as exc:
        raise ConfigError(f"operators file: {exc}") from None
    return 0


def _summary(doc: str | None, name: str) -> str:
    """First sentence of a bench module's docstring, without its "`capstan bench NAME`:" lead."""
    para = " ".join((doc or name).strip().split("\n\n")[0].split())
    para = re.sub(r"^`capstan bench \w+`:\s*", "", para)
    return para.split(". ")[0].rstrip(".")


def _add_benches(sub) -> None:
    bench = sub.add_parser("bench", help="run a benchmark (see `capstan bench -h`)")
    names = bench.add_subparsers(dest="bench", metavar="NAME", required=True)
    for name in BENCHES:
        module = importlib.import_module(f"capstan.bench.{name}")  # bench modules import heavy parts lazily
        p = names.add_parser(
            name,
            help=_summary(module.__doc__, name),
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.build_parser(p)
        p.set_defaults(func=module.run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="capstan",
        description="Code-as-policies robot service: natural-language commands become "
        "sandboxed policy programs on a simulated tabletop robot or a remote robot agent.",
        epilog=SETTINGS_HELP,
    )
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser(
        "serve",
        help="serve the HTTP API and the web page",
        epilog=_settings_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--host",
        default=None,
        help="listen address (default CAPSTAN_HOST or 127.0.0.1; "
        "beyond loopback CAPSTAN_API_TOKEN is required)",
    )
    p.add_argument("--port", type=int, default=None, help="port (default CAPSTAN_PORT or 8000)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--no-warm-up",
        action="store_true",
        help="skip computing the local model's prompt-prefix cache at start",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "run", help="run one command in process and print code, speech and final scene", epilog=SETTINGS_HELP
    )
    p.add_argument("command", nargs="?", default="", help="natural-language command")
    p.add_argument("--program", metavar="FILE", help="run this policy program instead of a command")
    p.add_argument("--scene", help='scene spec JSON (default {"objects": ["red block", "blue bowl"]})')
    p.add_argument("--seed", type=int, help="scene seed")
    p.add_argument("--robot", default="sim", help="'sim' (default) or a remote robot named in CAPSTAN_ROBOTS")
    p.add_argument("--gif", metavar="PATH", help="write the run's video as a GIF here")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("trace", help="show a stored run trace", epilog=SETTINGS_HELP)
    p.add_argument("run_id")
    p.add_argument("--json", action="store_true", help="print the full trace as JSON")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser(
        "operators",
        help="add, remove or list the operators (CAPSTAN_OPERATORS)",
        description="Operators approve or reject programs before they move a robot (CAPSTAN_APPROVAL), "
        "and lift a robot's watchdog stop or clear its error state. `add NAME` writes NAME with a new "
        "token to the file (a digest only) and prints the token once: the operator sends it as "
        "X-Operator-Token (or enters it on the page). Adding a name again replaces its token; `remove "
        "NAME` revokes it. A running service re-reads the file when it changes.",
    )
    p.add_argument("action", choices=("add", "remove", "list"))
    p.add_argument("name", nargs="?", help="the operator's name (for add and remove)")
    p.add_argument("--file", help="the operators file (default CAPSTAN_OPERATORS)")
    p.set_defaults(func=cmd_operators)

    from capstan.service.agent_watchdog import DEFAULT_HEARTBEAT_MS

    p = sub.add_parser(
        "robot-agent",
        help="serve a robot over the robot agent protocol (a PyBullet world, or a Franka through franky)",
        description="Serve a robot over the robot agent protocol (docs/CONTRACTS.md), so that a "
        "Capstan service drives it as a remote robot: CAPSTAN_ROBOTS=NAME=http://HOST:PORT. "
        "--backend sim (default) serves a headless PyBullet world; --backend franka a Franka arm "
        "through franky (pip install 'capstan[franka]'), whose objects are declared with "
        "PUT /v1/robot/scene. Other robots serve the same protocol with "
        "capstan.service.robot_agent.make_agent_app(their RobotBackend). The robot moves only while "
        "the service's heartbeat is fresh, and stops (until resumed) when it lapses: see --heartbeat-ms.",
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (beyond loopback --token is required)")
    p.add_argument("--port", type=int, default=8100, help="port (default 8100)")
    p.add_argument(
        "--token", default=None, help="bearer token clients must send (CAPSTAN_ROBOT_TOKEN on the service)"
    )
    p.add_argument(
        "--backend", choices=["sim", "franka"], default="sim", help="the robot to serve (default sim)"
    )
    p.add_argument("--scene", help='sim: scene spec JSON (default {"objects": ["red block", "blue bowl"]})')
    p.add_argument("--seed", type=int, help="sim: scene seed")
    p.add_argument("--franka-host", help="franka: the robot's FCI address")
    p.add_argument(
        "--franka-sim", action="store_true", help="franka: start franky-sim (MuJoCo) with two blocks instead"
    )
    p.add_argument(
        "--calibration",
        help='franka: JSON file {"translation": [x, y, z], "yaw": rad}, the table frame in the base frame',
    )
    p.add_argument(
        "--max-speed",
        type=float,
        help="franka: highest relative dynamics factor, in (0, 1] (default 0.5; the envelope caps it too)",
    )
    p.add_argument(
        "--max-force",
        type=float,
        help="franka: highest grasp force in N (default 70; the envelope caps it too)",
    )
    p.add_argument("--realtime", action="store_true", help="franka: insist on a real-time kernel")
    p.add_argument(
        "--envelope",
        metavar="FILE",
        help="safety envelope JSON the agent enforces before every motion (docs/CONTRACTS.md); default: "
        "the workspace box, 5 mm to 0.5 m above the table, speed 0.5, 40 N, 60 motions and 300 s per run",
    )
    p.add_argument(
        "--heartbeat-ms",
        type=int,
        default=DEFAULT_HEARTBEAT_MS,
        metavar="N",
        help="stop the robot when the service's heartbeat is older than N ms (default "
        f"{DEFAULT_HEARTBEAT_MS}; the service beats every N/4 ms); motions are refused while no fresh "
        "heartbeat is present, and a stop holds until POST /v1/robot/resume",
    )
    p.add_argument(
        "--unsafe-no-heartbeat",
        action="store_true",
        help="with --heartbeat-ms 0: no watchdog; a robot whose service link dies keeps moving",
    )
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_robot_agent)

    _add_benches(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    t0 = time.time()
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:  # the bench's input errors too (ProblemFileError, HarnessError)
        _say(f"capstan: {exc}")
        return 2
    except NoIsolationError as exc:  # fails closed: no policy code without an OS boundary
        _say(f"capstan: {exc}")
        return 3
    except KeyboardInterrupt:
        _say(f"capstan: interrupted after {time.time() - t0:.1f}s")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
