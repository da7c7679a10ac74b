"""A run's videos: both written side by side, and a failing encoder costs only its own file."""

from __future__ import annotations

import numpy as np

from capstan.service import media


def frames(n: int = 6) -> list[np.ndarray]:
    return [np.full((24, 32, 3), 40 * k, dtype=np.uint8) for k in range(n)]


def test_both_videos_are_written(tmp_path):
    rec = media.Recorder(tmp_path, "abcdef12", max_frames=10)
    for f in frames():
        rec.add(f)
    assert rec.finish() == {"gif": True, "mp4": True}
    assert (tmp_path / "abcdef12" / "video.gif").stat().st_size > 0
    assert (tmp_path / "abcdef12" / "video.mp4").stat().st_size > 0


def test_a_failing_encoder_costs_only_its_own_file(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no ffmpeg")

    monkeypatch.setitem(media.ENCODERS, "mp4", broken)
    rec = media.Recorder(tmp_path, "abcdef12", max_frames=10)
    for f in frames():
        rec.add(f)
    assert rec.finish() == {"gif": True, "mp4": False}
    urls = media.write_rehearsal(tmp_path, "abcdef12", 0, frames())
    assert urls == {"gif": "/v1/runs/abcdef12/rehearsals/0.gif", "mp4": None}
    assert (tmp_path / "abcdef12" / "rehearsals" / "0.gif").exists()
