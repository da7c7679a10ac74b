"""Per-run media on disk: frames as PNG, then a GIF and an MP4 at the end of the run
(encoded by capstan.sim.recorder, the one place that writes videos).

Layout: $CAPSTAN_DATA_DIR/media/<run_id>/frames/<n>.png, video.gif, video.mp4, and for the
rehearsals of its programs on a robot's twin rehearsals/<n>.gif and rehearsals/<n>.mp4.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from capstan.sim.recorder import write_gif, write_mp4

log = logging.getLogger("capstan.media")
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
        out = {"gif": False, "mp4": False}
        if not self._frames:
            return out
        for kind, write in (("gif", write_gif), ("mp4", write_mp4)):
            try:
                write(self._frames, self.dir / f"video.{kind}", fps=FPS)
                out[kind] = True
            except Exception:  # media is best effort: a failed encoder must not fail the run
                log.exception("%s encoding failed for %s", kind.upper(), self.dir)
        self._frames.clear()
        return out


def write_rehearsal(media_dir: Path, run_id: str, index: int, frames: list[np.ndarray]) -> dict:
    """The video of one rehearsal on a twin as rehearsals/<index>.gif and .mp4; returns their URLs
    (None for one that could not be written: media are best effort)."""
    out_dir = run_dir(media_dir, run_id) / "rehearsals"
    out_dir.mkdir(parents=True, exist_ok=True)
    urls: dict = {"gif": None, "mp4": None}
    rgb = [np.asarray(f, dtype=np.uint8)[..., :3] for f in frames]
    for kind, write in (("gif", write_gif), ("mp4", write_mp4)):
        try:
            write(rgb, out_dir / f"{index}.{kind}", fps=FPS)
            urls[kind] = f"/v1/runs/{run_id}/rehearsals/{index}.{kind}"
        except Exception:
            log.exception("%s encoding of rehearsal %d failed for %s", kind.upper(), index, run_id)
    return urls
