"""The `capstan` command line: help, run (in process), trace, and the serve guard."""

from __future__ import annotations

import json
import re

import pytest

from capstan.service.cli import main


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    cassette = tmp_path / "empty.jsonl"
    cassette.touch()  # replaying an empty cassette: no model needed for programs
    monkeypatch.setenv("CAPSTAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CAPSTAN_CASSETTE", str(cassette))
    monkeypatch.setenv("CAPSTAN_CASSETTE_MODE", "replay")
    monkeypatch.setenv("CAPSTAN_SANDBOX_POOL", "1")
    return tmp_path


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("serve", "run", "trace", "operators", "robot-agent", "bench"):
        assert re.search(rf"^\s+{cmd}\s", out, re.MULTILINE), cmd
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "CAPSTAN_API_TOKEN" in capsys.readouterr().out


def test_bench_help_lists_every_bench(capsys):
    from capstan.service.cli import BENCHES

    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    missing = [name for name in BENCHES if not re.search(rf"^\s+{name}\b", out, re.MULTILINE)]
    assert not missing, out


def test_run_a_program_then_read_its_trace(cli_env, capsys):
    program = cli_env / "policy.py"
    program.write_text("put_first_on_second('red block', 'blue bowl')\nsay('in the bowl')\n")
    gif = cli_env / "run.gif"
    rc = main(["run", "--program", str(program), "--seed", "7", "--gif", str(gif)])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    assert "robot: in the bowl" in out and "status: succeeded" in out and "red block" in out
    assert gif.read_bytes()[:6] == b"GIF89a"
    run_id = re.search(r"run ([0-9a-f]{16})", err).group(1)
    assert main(["trace", run_id, "--json"]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["id"] == run_id and trace["status"] == "succeeded" and trace["said"] == ["in the bowl"]
    assert main(["trace", run_id]) == 0
    assert "put_first_on_second" in capsys.readouterr().out
    assert main(["trace", "0000000000000000"]) == 1


def test_bad_scene_and_public_host_are_refused(cli_env, capsys):
    assert main(["run", "say hi", "--scene", "{not json"]) == 2
    assert "--scene is not valid JSON" in capsys.readouterr().err
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "CAPSTAN_API_TOKEN" in capsys.readouterr().err


def test_run_a_command_from_a_recorded_cassette(cli_env, capsys, monkeypatch):
    """`capstan run "command"`: record the model's answer once (scripted), then the CLI replays it."""
    from capstan.llm.cassette import CassetteProvider
    from capstan.llm.config import model_name
    from capstan.llm.scripted import ScriptedProvider
    from capstan.service.config import Settings
    from capstan.service.service import Service

    cassette = cli_env / "put.jsonl"
    answer = "```python\nput_first_on_second('red block', 'blue bowl')\nsay('done')\n```"
    recorder = CassetteProvider(cassette, "record", inner=ScriptedProvider([answer], model=model_name({})))
    svc = Service(Settings.from_env({}, data_dir=cli_env / "rec", media=False, sandbox_pool=1), llm=recorder)
    try:
        session = svc.sessions.create("sim", {"objects": ["red block", "blue bowl"], "seed": 7})
        svc.runs.submit(session, "command", "put the red block in the blue bowl").done.wait()
    finally:
        svc.close()
    monkeypatch.setenv("CAPSTAN_CASSETTE", str(cassette))
    rc = main(["run", "put the red block in the blue bowl", "--seed", "7"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "put_first_on_second('red block', 'blue bowl')" in out and "robot: done" in out


def test_robot_agent_serves_a_sim_world_over_http(free_port, capsys):
    import subprocess
    import sys

    import httpx

    from tests.servers import wait_for_http

    assert main(["robot-agent", "--host", "0.0.0.0", "--port", "1"]) == 2  # public without a token
    assert "--token" in capsys.readouterr().err
    argv = [
        sys.executable,
        "-m",
        "capstan.service.cli",
        "robot-agent",
        "--port",
        str(free_port),
        "--seed",
        "3",
    ]
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        try:
            info = wait_for_http(f"http://127.0.0.1:{free_port}/v1/robot", proc, 60).json()
            assert info["protocol"] == 1 and info["robot"].startswith("sim")
            state = httpx.get(f"http://127.0.0.1:{free_port}/v1/robot/state").json()
            assert set(state["objects"]) == {"red block", "blue bowl"} and state["seed"] == 3
        finally:
            proc.terminate()
            proc.wait(20)


def test_run_on_a_remote_robot(cli_env, capsys, monkeypatch, robot_agent):
    agent = robot_agent()
    monkeypatch.setenv("CAPSTAN_ROBOTS", f"lab={agent.url},gone=http://127.0.0.1:9")
    program = cli_env / "policy.py"
    program.write_text("put_first_on_second('red block', 'blue bowl')\nsay('done on the lab robot')\n")
    assert main(["run", "--robot", "lab", "--program", str(program)]) == 0
    assert "robot: done on the lab robot" in capsys.readouterr().out
    objects = agent.app.state.world.state()["objects"]
    assert abs(objects["red block"]["position"][0] - objects["blue bowl"]["position"][0]) < 0.05
    assert main(["run", "--robot", "lab", "--seed", "3", "--program", str(program)]) == 2
    assert "real robot" in capsys.readouterr().err
    assert main(["run", "--robot", "gone", "--program", str(program)]) == 1
    assert "cannot be reached" in capsys.readouterr().err
    assert main(["run", "--robot", "nowhere", "--program", str(program)]) == 2
    assert "unknown robot" in capsys.readouterr().err


def test_run_asks_on_the_terminal_when_the_robot_requires_approval(cli_env, capsys, monkeypatch, robot_agent):
    import io

    agent = robot_agent()
    monkeypatch.setenv("CAPSTAN_ROBOTS", f"lab={agent.url}")
    monkeypatch.setenv("CAPSTAN_APPROVAL", "required")
    program = cli_env / "policy.py"
    program.write_text("put_first_on_second('red block', 'blue bowl')\nsay('done')\n")
    before = agent.app.state.world.state()["objects"]["red block"]["position"]
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert main(["run", "--robot", "lab", "--program", str(program)]) == 1
    out, err = capsys.readouterr()
    assert "awaiting approval" in err and "put_first_on_second" in err
    assert "not approved to run on the robot" in out
    assert agent.app.state.world.state()["objects"]["red block"]["position"] == before
    run_id = re.search(r"run ([0-9a-f]{16})", err).group(1)
    assert main(["trace", run_id]) == 0
    assert re.search(r"rejected by \S+ \(terminal\) \(unverified\) at \d{4}-", capsys.readouterr().out)
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert main(["run", "--robot", "lab", "--program", str(program)]) == 0
    assert "robot: done" in capsys.readouterr().out
    assert agent.app.state.world.state()["objects"]["red block"]["position"] != before


def test_with_operators_a_yes_on_the_terminal_needs_an_operators_token(
    cli_env, capsys, monkeypatch, robot_agent
):
    import io

    from capstan.service.operators import add_operator

    token = add_operator(cli_env / "operators.json", "olga")
    agent = robot_agent()
    for var, value in (
        ("CAPSTAN_ROBOTS", f"lab={agent.url}"),
        ("CAPSTAN_APPROVAL", "required"),
        ("CAPSTAN_OPERATORS", str(cli_env / "operators.json")),
    ):
        monkeypatch.setenv(var, value)
    program = cli_env / "policy.py"
    program.write_text("put_first_on_second('red block', 'blue bowl')\nsay('done')\n")
    before = agent.app.state.world.state()["objects"]["red block"]["position"]
    for typed, rc in (("not-a-token", 1), (token, 0)):
        monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
        monkeypatch.setattr("getpass.getpass", lambda prompt="", typed=typed: typed)
        assert main(["run", "--robot", "lab", "--program", str(program)]) == rc
        err = capsys.readouterr().err
        run_id = re.search(r"run ([0-9a-f]{16})", err).group(1)
        assert main(["trace", run_id]) == 0
        trace = capsys.readouterr().out
        if rc:  # a yes without an operator's token is a rejection, and the arm stays put
            assert "(unverified)" in trace and "no operator's token" in trace
            assert agent.app.state.world.state()["objects"]["red block"]["position"] == before
        else:
            assert re.search(r"approved by olga at \d{4}-", trace)
    assert agent.app.state.world.state()["objects"]["red block"]["position"] != before


def test_operators_are_added_with_a_token_shown_once_and_listed(tmp_path, capsys, monkeypatch):
    from capstan.service.operators import Operators

    path = tmp_path / "operators.json"
    assert main(["operators", "add", "alice", "--file", str(path)]) == 0
    token = capsys.readouterr().out.strip()
    assert Operators(path).who(token) == "alice"
    monkeypatch.setenv("CAPSTAN_OPERATORS", str(path))
    assert main(["operators", "add", "bo"]) == 0
    assert main(["operators", "list"]) == 0 and capsys.readouterr().out.split()[-2:] == ["alice", "bo"]
    assert main(["operators", "remove", "alice"]) == 0 and Operators(path).who(token) is None
    assert main(["operators", "remove", "alice"]) == 2 and "no operator 'alice'" in capsys.readouterr().err
    assert main(["operators", "add"]) == 2 and "NAME" in capsys.readouterr().err
    assert main(["operators", "add", "e-stop"]) == 2 and "reserved" in capsys.readouterr().err
    assert main(["operators", "add", "x", "--file", str(tmp_path / "no" / "dir.json")]) == 2
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["run", "--program", "/nonexistent/p.py"], "cannot read it"),
        (["run", "--program", "/dev/null"], "the file is empty"),
        (["run", "--program", "/dev/null", "say hi"], "not both"),
        (["run", "--gif", "/nonexistent/dir/x.gif", "say hi"], "its folder does not exist"),
        (["run", "   "], "the command has no words"),
        (["run", "x" * 2001], "CAPSTAN_MAX_COMMAND_CHARS"),
        (["run", "--program", "/dev/zero"], "more than 50000 bytes (CAPSTAN_MAX_CODE_BYTES)"),
    ],
)
def test_run_refuses_what_it_cannot_use_before_anything_starts(argv, says, capsys, monkeypatch):
    import capstan.service.service as service_module

    def no_service(*args, **kwargs):
        raise AssertionError("the service was started")

    monkeypatch.setattr(service_module, "Service", no_service)
    assert main(argv) == 2
    assert says in capsys.readouterr().err


def test_a_program_file_may_start_with_a_byte_order_mark(cli_env, capsys):
    program = cli_env / "bom.py"
    program.write_bytes("\ufeffsay('hello')\n".encode())
    assert main(["run", "--program", str(program)]) == 0
    assert "hello" in capsys.readouterr().out


def test_a_language_model_that_cannot_start_is_one_line(cli_env, capsys, monkeypatch):
    monkeypatch.delenv("CAPSTAN_CASSETTE")
    monkeypatch.setenv("CAPSTAN_LLM", "openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["run", "say hi"]) == 2
    err = capsys.readouterr().err
    assert "capstan: cannot start the language model (CAPSTAN_LLM=openai)" in err and "Traceback" not in err


def test_unreadable_files_and_folders_are_one_line(tmp_path, capsys, monkeypatch):
    with_bom = tmp_path / "bom.json"
    with_bom.write_bytes(b"\xef\xbb\xbf{}")  # an editor's byte-order mark is no reason to refuse it
    assert main(["operators", "list", "--file", str(with_bom)]) == 0
    binary = tmp_path / "operators.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["operators", "list", "--file", str(binary)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    monkeypatch.setenv("CAPSTAN_DATA_DIR", str(not_a_folder))
    assert main(["trace", "abc"]) == 2
    err = capsys.readouterr().err
    assert "cannot make the folder of the trace database" in err and "Traceback" not in err


def test_a_program_that_asks_the_model_nothing_runs_without_loading_it(cli_env, capsys, monkeypatch):
    import capstan.service.service as service_module

    def no_model(progress):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(service_module, "_load_llm", no_model)
    program = cli_env / "p.py"
    program.write_text("say(str(len(get_obj_names())))\n")
    assert main(["run", "--program", str(program)]) == 0
    assert "loading the language model" not in capsys.readouterr().err
    # one that asks it something through a nested LMP loads it then, and a model that cannot
    # start fails that run as the model's failure
    program.write_text("say(str(parse_obj_name('the red one')))\n")
    assert main(["run", "--program", str(program)]) == 1
    said = capsys.readouterr().out
    assert "the language model could not start (AssertionError: the model was loaded)" in said


def test_serve_stops_its_runs_at_once_when_told_to_stop_even_with_a_page_watching(cli_env, free_port):
    """SIGTERM with an event stream open on an endless program: the run is e-stopped at once and
    the server is gone within seconds (it waited for the stream, and the run went on moving)."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    import httpx

    from capstan.service.store import SQLiteStore
    from tests.servers import wait_for_http

    base = f"http://127.0.0.1:{free_port}"

    def watch(run_id: str) -> None:  # the page's event stream, read until the server ends it
        with httpx.stream("GET", f"{base}/v1/runs/{run_id}/events", timeout=60) as events:
            for _ in events.iter_lines():
                pass

    argv = [sys.executable, "-m", "capstan.service.cli", "serve", "--port", str(free_port), "--no-warm-up"]
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        try:
            wait_for_http(f"{base}/healthz", proc, 90)
            sid = httpx.post(f"{base}/v1/sessions", json={}).json()["id"]
            code = "while True:\n    put_first_on_second('red block', 'blue bowl')\n    wait(0.5)"
            run_id = httpx.post(f"{base}/v1/sessions/{sid}/programs", json={"code": code}).json()["run_id"]
            threading.Thread(target=watch, args=(run_id,), daemon=True).start()
            time.sleep(3)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            assert time.monotonic() - t0 < 10
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    store = SQLiteStore(cli_env / "data" / "capstan.db")
    assert store.get_run(run_id)["status"] == "cancelled"
    store.close()
