"""Per-run media on disk: frames as PNG, then a GIF and an MP4 at the end of the run
(encoded by capstan.sim.recorder, the one place that writes videos).

Layout: $CAPSTAN_DATA_DIR/media/<run_id>/frames/<n>.png, video.gif, video.mp4, and for the
rehearsals of its programs on a robot's twin rehearsals/<n>.gif and rehearsals/<n>.mp4.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
from pathlib import Path

import numpy as np

from capstan.sim.recorder import write_gif, write_mp4

log = logging.getLogger("capstan.media")
ENCODERS = {"gif": write_gif, "mp4": write_mp4}
_RUN_ID = re.compile(r"^[0-9a-f]{6,64}$")
FPS = 8


def run_dir(media_dir: Path, run_id: str) -> Path:
    if not _RUN_ID.match(run_id):
        raise ValueError(f"bad run id {run_id!r}")
    return media_dir / run_id


class Recorder:
    """Collects frames of one run. Not thread-safe: used only by the run's own thread."""

    def __init__(self, media_dir: Path, run_id: str, max_frames: int):
        self.dir = run_dir(media_dir, run_id)
        self.max_frames = max_frames
        self.count = 0
        self._frames: list[np.ndarray] = []

    @property
    def full(self) -> bool:
        return self.count >= self.max_frames

    def add(self, rgb: np.ndarray) -> tuple[int, bytes] | None:
        """Save one frame; returns (index, png bytes), or None once `max_frames` is reached."""
        if self.full:
            return None
        from capstan.service.sessions import png_bytes

        frames_dir = self.dir / "frames"
        frames_dir.mkdir(parents=True, exist_ok=True)
        png = png_bytes(rgb)
        (frames_dir / f"{self.count}.png").write_bytes(png)
        self._frames.append(np.asarray(rgb, dtype=np.uint8)[..., :3])  # a remote robot may send RGBA
        self.count += 1
        return self.count - 1, png

    def finish(self) -> dict:
        """Write video.gif and video.mp4; returns {"gif": bool, "mp4": bool}."""
        if not self._frames:
            return {"gif": False, "mp4": False}
        written = write_videos(self._frames, self.dir / "video", str(self.dir))
        self._frames.clear()
        return {kind: path is not None for kind, path in written.items()}


def write_videos(frames: list[np.ndarray], stem: Path, what: str) -> dict[str, Path | None]:
    """`stem`.gif and `stem`.mp4, encoded side by side (the MP4 by an ffmpeg process); each is
    None when it could not be written: media are best effort, a failed encoder fails no run."""

    def write(kind: str) -> Path | None:
        try:
            return ENCODERS[kind](frames, stem.with_suffix(f".{kind}"), fps=FPS)
        except Exception:
            log.exception("%s encoding failed for %s", kind.upper(), what)
            return None

    with concurrent.futures.ThreadPoolExecutor(1) as other:
        mp4 = other.submit(write, "mp4")
        return {"gif": write("gif"), "mp4": mp4.result()}


def write_rehearsal(media_dir: Path, run_id: str, index: int, frames: list[np.ndarray]) -> dict:
    """The video of one rehearsal on a twin as rehearsals/<index>.gif and .mp4; returns their URLs
    (None for one that could not be written: media are best effort)."""
    out_dir = run_dir(media_dir, run_id) / "rehearsals"
    out_dir.mkdir(parents=True, exist_ok=True)
    rgb = [np.asarray(f, dtype=np.uint8)[..., :3] for f in frames]
    written = write_videos(rgb, out_dir / str(index), f"rehearsal {index} of run {run_id}")
    return {
        kind: f"/v1/runs/{run_id}/rehearsals/{index}.{kind}" if path is not None else None
        for kind, path in written.items()
    }
