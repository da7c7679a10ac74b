"""Write recorded frames as an animated GIF (Pillow) or an MP4 (imageio-ffmpeg's bundled ffmpeg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _check(frames: list[np.ndarray]) -> None:
    if not frames:
        raise ValueError("no frames to write; start_recording() before moving and stop_recording() after")
    shape = frames[0].shape
    if len(shape) != 3 or shape[2] != 3 or any(f.shape != shape for f in frames):
        raise ValueError(f"frames must all be (H, W, 3) uint8 of one size; first is {shape}")


def write_gif(frames: list[np.ndarray], path: str | Path, fps: float = 10.0) -> Path:
    """Animated GIF that loops forever; returns the path."""
    from PIL import Image

    _check(frames)
    path = Path(path)
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    duration = max(20, round(1000 / fps))
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0, optimize=False)
    return path


def write_mp4(frames: list[np.ndarray], path: str | Path, fps: float = 10.0) -> Path:
    """H.264 MP4 (yuv420p, playable in browsers); odd sizes are padded by one pixel."""
    import imageio.v2 as imageio

    _check(frames)
    path = Path(path)
    h, w = frames[0].shape[:2]
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    with imageio.get_writer(
        path,
        format="FFMPEG",
        mode="I",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=1,
        ffmpeg_log_level="error",
        output_params=["-movflags", "+faststart", "-threads", "1"],  # small frames; runs encode side by side
    ) as writer:
        for f in frames:
            writer.append_data(np.pad(np.asarray(f, dtype=np.uint8), pad, mode="edge"))
    return path
