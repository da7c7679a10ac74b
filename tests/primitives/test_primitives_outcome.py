"""The shared outcome types: statuses and error kinds are their strings, a RunError serialises to the
{kind, message, line} of traces and the API, and a backend refuses a capability it does not declare."""

from __future__ import annotations

import json

import pytest

from capstan.primitives.fake import FakeBackend
from capstan.primitives.outcome import SANDBOX_ERROR_KINDS, ErrorKind, RunError, RunStatus


def test_statuses_and_kinds_are_their_strings():
    assert RunStatus.SUCCEEDED == "succeeded" and f"{ErrorKind.NO_CODE}" == "no_code"
    assert json.dumps({"status": RunStatus.CANCELLED}) == '{"status": "cancelled"}'
    assert [s for s in RunStatus if s.final] == ["succeeded", "failed", "cancelled", "interrupted"]
    assert set(SANDBOX_ERROR_KINDS) <= set(ErrorKind)


def test_a_run_error_serialises_as_traces_show_it():
    err = RunError(ErrorKind.PRIMITIVE, "unknown object 'x'", 3)
    assert err.to_dict() == {"kind": "primitive", "message": "unknown object 'x'", "line": 3}
    assert type(err.to_dict()["kind"]) is str
    assert str(err) == "primitive (line 3): unknown object 'x'"
    assert str(RunError(ErrorKind.TIMEOUT, "too slow")) == "timeout: too slow"


def test_shifting_lines_drops_a_line_outside_the_program():
    err = RunError(ErrorKind.POLICY, "ZeroDivisionError", 5)
    assert err.shifted(4).line == 1
    assert err.shifted(5).line is None and RunError(ErrorKind.POLICY, "x").shifted(2).line is None


def test_a_backend_refuses_what_it_does_not_declare():
    fake = FakeBackend({"red block": [0.0, 0.4]})
    assert not (fake.supports_snapshots or fake.supports_recording or fake.supports_placing)
    with pytest.raises(NotImplementedError, match="supports_snapshots"):
        fake.snapshot()
    with pytest.raises(NotImplementedError, match="supports_recording"):
        fake.start_recording()
    with fake.headless():  # nothing to switch off
        pass
