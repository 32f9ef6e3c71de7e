
"""The one inference path: bounded prefetch ahead of the model."""
import time

import torch

from lstmimg import load_checkpoint


def test_predict_decodes_at_most_two_batches_ahead_of_the_model(trained_run, bars, monkeypatch):
    """A slow model must not let decoding run ahead over every file (memory would grow with the list)."""
    import lstmimg.data.images as images_module
    from lstmimg.engine.infer.collection import predict

    images = sorted((bars / "train" / "vertical").iterdir())[:20]
    decoded, ahead = [], []
    original = images_module.load_image
    monkeypatch.setattr(images_module, "load_image", lambda path, *a, **k: decoded.append(path) or original(path, *a, **k))
    ckpt = load_checkpoint(trained_run)
    inner = ckpt.model

    class Slow(torch.nn.Module):
        def forward(self, x):
            time.sleep(0.2)
            ahead.append(len(decoded))
            return inner(x)

    ckpt.model = Slow()
    results, _ = predict(images, ckpt, batch_size=2, workers=0)  # decoded on a thread here, where it can be counted
    assert len(results) == 20
    assert max(ahead[i] - 2 * (i + 1) for i in range(len(ahead))) <= 2 * 2  # at most two batches decoded ahead


def test_prefetch_hands_on_errors_and_stops_its_producer():
    import pytest

    from lstmimg.engine.infer.inference import prefetch

    def failing():
        yield 1
        raise ValueError("bad file")

    with pytest.raises(ValueError, match="bad file"):
        list(prefetch(failing()))

    made = []

    def counting():
        for i in range(1000):
            made.append(i)
            yield i

    for item in prefetch(counting(), depth=2):
        if item == 3:
            break
    time.sleep(0.3)
    assert len(made) <= 3 + 1 + 2  # what was consumed, the one in hand, the depth ahead: not the 1000
