"""An lstmimg model inside Ray Data: ``BatchClassifier``, a callable class for ``Dataset.map_batches``.

Ray builds one ``BatchClassifier`` per actor (the model loaded once) and calls it with batches in Ray's
NumPy format, a dict of arrays. It takes decoded images (the ``image`` column ``ray.data.read_images``
makes) or decoded videos (a ``frames`` column, each ``(T, H, W, 3)`` RGB), brings them to the model's
input as ``predict`` does, and returns the batch with ``label`` and ``prob`` columns in place of the
pixels. Nothing here imports Ray: the class is plain Python, and the CLI never loads this module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lstmimg.engine.infer.inference import Predictor


class BatchClassifier:
    """Classify a batch of decoded images or videos with an lstmimg model (a run folder, checkpoint
    or ``.onnx`` file; default: the newest run of ``kind``, else the bundled model).

    ``batch["image"]``: images ``(N, H, W, C)`` or ``(N, H, W)``, or an object array of such arrays
    of any sizes, uint8. ``batch["frames"]``: an object array of videos, each uint8 RGB ``(T, H, W, 3)``
    at any size, scored as ``lstmimg eval`` scores a video (its clips, softmax averaged). Returns the
    other columns as they came (``path`` for instance) plus ``label`` (str), ``prob`` (float32) and
    ``probs`` ``(N, classes)``."""

    def __init__(self, model: str | Path | None = None, kind: str = "image", device: str = "auto", backend: str = "auto"):
        from lstmimg.engine.infer.loading import load_model
        from lstmimg.runs import resolve_model

        self.ckpt, self.backend = load_model(resolve_model(model, kind)[0], None, backend, device)
        self.predictor = Predictor.from_checkpoint(self.ckpt, device)
        self.classes = np.array(self.ckpt.classes)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        column = "frames" if "frames" in batch else "image"
        if column not in batch:
            raise KeyError(f"BatchClassifier takes an 'image' or a 'frames' column; the batch has {', '.join(batch)}")
        items = list(batch[column])
        if column == "image":
            probs = self.predictor.probs(torch.stack([self._image(x) for x in items])) if items else torch.empty(0, len(self.classes))
        else:
            probs = torch.stack([self._video(x) for x in items]) if items else torch.empty(0, len(self.classes))
        rest = {k: v for k, v in batch.items() if k != column}
        best = probs.argmax(1).numpy() if len(probs) else np.zeros(0, dtype=int)
        return {**rest, "label": self.classes[best], "prob": probs.max(1).values.numpy() if len(probs) else np.zeros(0, np.float32), "probs": probs.numpy()}

    def _image(self, array: np.ndarray) -> torch.Tensor:
        from PIL import Image

        from lstmimg.data.images import to_array

        c = self.ckpt.config
        return torch.from_numpy(to_array(Image.fromarray(np.asarray(array, dtype=np.uint8)), c.in_channels, c.img_size, c.fit))

    def _video(self, frames: np.ndarray) -> torch.Tensor:
        from lstmimg.config import clip_settings
        from lstmimg.data.inputs import scored_clips
        from lstmimg.data.video_io import to_rgb

        c = self.ckpt.config
        resized = np.stack([to_rgb(np.ascontiguousarray(f[..., ::-1]), c.img_size) for f in frames])  # RGB -> BGR, as a decoder gives them
        clips = scored_clips(resized, *clip_settings(self.ckpt.meta), c.motion)
        return self.predictor.probs(clips).mean(0)
