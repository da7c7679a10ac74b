"""The heartbeat child process (capstan.primitives.heartbeat starts it): beats one client to a robot
agent on a fixed schedule and reports each beat on stdout, one line each ("ok 0", "ok 1" when the
agent's watchdog has tripped, "fail <why>").

It runs as its own process, with the standard library only (`python -I -S <this file>`, started in
tens of milliseconds), because the service's own process can hold Python's lock for hundreds of
milliseconds at a time (building a PyBullet world for a twin rehearsal does): a thread there would
miss its beats, and the agent would stop a robot that nothing is wrong with.

stdin is the parent's lifeline: the line "bye" ends the heartbeat on purpose (a goodbye the agent's
watchdog takes as a clean leave); end of file without it means the parent died, and the child stops
beating without a word, so the watchdog sees silence and stops the robot.
"""

import contextlib
import http.client
import json
import os
import select
import sys
import time
import urllib.parse

PATH = "/v1/robot/heartbeat"


def post(config: dict, body: dict) -> dict:
    url = urllib.parse.urlsplit(config["url"])
    connection_class = {"http": http.client.HTTPConnection, "https": http.client.HTTPSConnection}[url.scheme]
    connection = connection_class(url.netloc, timeout=config["timeout_s"])
    try:
        headers = {**config["headers"], "Content-Type": "application/json"}
        connection.request("POST", url.path.rstrip("/") + PATH, json.dumps(body), headers)
        response = connection.getresponse()
        data = response.read()
        if response.status >= 400:
            raise ValueError(f"HTTP {response.status}: {data[:200]!r}")
        return json.loads(data or b"{}")
    finally:
        connection.close()


def beat(config: dict) -> str:
    try:
        answer = post(config, {"client": config["client"]})
    except (OSError, ValueError) as exc:  # refused, timed out, reset, or an answer that is no answer
        return f"fail {type(exc).__name__}: {exc}".replace("\n", " ")
    return f"ok {int(bool(answer.get('tripped')))}"


def main() -> int:
    config = json.loads(os.environ["CAPSTAN_HEARTBEAT"])
    period = float(config["period_s"])
    due = time.monotonic()
    while True:
        print(beat(config), flush=True)
        due = max(due + period, time.monotonic() - period)  # after a long stall, no burst of beats
        while (wait := due - time.monotonic()) > 0:
            if not select.select([sys.stdin], [], [], wait)[0]:
                break
            line = sys.stdin.readline()
            if not line:  # the parent is gone without a goodbye: fall silent
                return 0
            if line.strip() == "bye":
                # unreachable: its watchdog trips, which is what a lost link should do
                with contextlib.suppress(OSError, ValueError):
                    post(config, {"client": config["client"], "end": True})
                return 0


if __name__ == "__main__":
    sys.exit(main())
