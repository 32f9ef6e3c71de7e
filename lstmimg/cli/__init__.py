"""The `lstmimg` command: a thin typer + rich layer over the library.

The cli package is the only place that imports typer or rich: the app and what every command shares in
``base``, the training and inference commands in ``commands``, `lstmimg video` in ``video``, the ones that explain, export and
measure models in ``tools``, `lstmimg check` in ``check``, `lstmimg tune` in ``tune``, the rendering in ``render``. torch, torchvision and cv2 are imported inside
the commands, so `lstmimg --help` starts at once.
"""

from __future__ import annotations

import os

from lstmimg.cli import check, commands, tools, tune, video  # noqa: F401  (their commands join the app)
from lstmimg.cli.base import app


def main() -> None:
    # process-wide settings belong here, not in the library: OpenCV and FFmpeg stay quiet, since our
    # own messages say what went wrong with a file, once
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    app()
