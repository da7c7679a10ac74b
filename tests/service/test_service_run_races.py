"""Races at the edges of a run's life: two cancels of a queued run, a reset of a session deleted
meanwhile, idle expiry while a run waits, and one session's backlog beside another's."""

from __future__ import annotations

import threading
import time

import pytest

from tests.service.test_service_api import new_session

LONG = "while True:\n    wait(1)"


def _status(client, run_id: str) -> str:
    return client.get(f"/v1/runs/{run_id}").json()["status"]


def _until(client, run_id: str, status: str, timeout_s: float = 60) -> None:
    deadline = time.time() + timeout_s
    while _status(client, run_id) != status:
        assert time.time() < deadline, f"run {run_id} never became {status}"
        time.sleep(0.05)


def test_two_cancels_of_a_queued_run_never_stop_the_robot(make_service, client_for, monkeypatch):
    """The second cancel comes while the first is still finishing the queued run: it must not take
    the run for a running one and e-stop the session's robot under the run that holds it."""
    service = make_service()
    client = client_for(service)
    sid = new_session(client)
    holder = client.post(f"/v1/sessions/{sid}/programs", json={"code": LONG}).json()["run_id"]
    _until(client, holder, "running")
    queued = client.post(f"/v1/sessions/{sid}/programs", json={"code": "say('later')"}).json()["run_id"]
    finish, gate = service.runs._finish, threading.Event()

    def slow_finish(run, *args, **kwargs):
        if run.id == queued:
            gate.wait(10)
        return finish(run, *args, **kwargs)

    monkeypatch.setattr(service.runs, "_finish", slow_finish)
    answers: list[str] = []
    first = threading.Thread(target=lambda: answers.append(service.runs.cancel(queued)))
    first.start()
    deadline = time.time() + 10
    while service.runs.get_active(queued) is not None and not service.runs.get_active(queued).cancel.is_set():
        assert time.time() < deadline
        time.sleep(0.01)
    time.sleep(0.1)  # the first cancel is inside its _finish now
    answers.append(service.runs.cancel(queued))
    gate.set()
    first.join(10)
    assert sorted(answers) == ["cancelled", "cancelled"]
    time.sleep(1.5)
    assert _status(client, holder) == "running"  # not e-stopped by the second cancel
    client.post(f"/v1/runs/{holder}/cancel")
    _until(client, holder, "cancelled")
    after = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": "say('moving on')"}).json()
    assert after["status"] == "succeeded", after["error"]


def test_a_reset_of_a_session_deleted_meanwhile_touches_no_other_world(make_service, client_for):
    """A reset that got its session before a delete: refused (404), and the world that PyBullet's
    reused client id now names, another session's, keeps working."""
    from capstan.service.sessions import SessionNotFound

    service = make_service()
    client = client_for(service)
    doomed = service.sessions.get(new_session(client))
    assert client.delete(f"/v1/sessions/{doomed.id}").status_code == 204
    other = new_session(client)
    with pytest.raises(SessionNotFound):
        doomed.reset()
    doomed.backend.close()  # closing a world twice is harmless
    t = client.post(f"/v1/sessions/{other}/programs?wait=true", json={"code": "say(str(len(blocks)))"}).json()
    assert t["status"] == "succeeded", t["error"]


def test_a_session_with_a_queued_run_does_not_expire(make_service, client_for):
    service = make_service(max_concurrent_runs=1)
    client = client_for(service)
    a, b = new_session(client), new_session(client)
    holder = client.post(f"/v1/sessions/{a}/programs", json={"code": LONG}).json()["run_id"]
    _until(client, holder, "running")
    waiting = client.post(f"/v1/sessions/{b}/programs", json={"code": "say('my turn')"}).json()["run_id"]
    assert _status(client, waiting) == "queued"
    assert service.sessions.expire_idle(now=time.time() + 10 * 86400) == []
    client.post(f"/v1/runs/{holder}/cancel")
    _until(client, waiting, "succeeded")


def test_one_session_s_backlog_leaves_room_for_the_others(make_service, client_for):
    service = make_service(max_queued_runs=4, max_concurrent_runs=1)
    client = client_for(service)
    hog, other = new_session(client), new_session(client)
    holder = client.post(f"/v1/sessions/{hog}/programs", json={"code": LONG}).json()["run_id"]
    _until(client, holder, "running")
    answers = [client.post(f"/v1/sessions/{hog}/programs", json={"code": "say('x')"}) for _ in range(3)]
    assert [r.status_code for r in answers] == [202, 202, 429]
    assert "its share of the run queue" in answers[2].text and answers[2].headers["Retry-After"]
    assert client.post(f"/v1/sessions/{other}/programs", json={"code": "say('y')"}).status_code == 202
    assert client.post(f"/v1/sessions/{other}/programs", json={"code": "say('z')"}).status_code == 202
    full = client.post(f"/v1/sessions/{new_session(client)}/programs", json={"code": "say('late')"})
    assert full.status_code == 429 and "CAPSTAN_MAX_QUEUED_RUNS" in full.text  # the whole queue: 4 waiting
    client.post(f"/v1/runs/{holder}/cancel")
