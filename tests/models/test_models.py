import pytest
import torch
from torch import nn

from lstmimg.config import ModelConfig
from lstmimg.errors import LstmimgError
from lstmimg.models.registry import MODELS, build_model, list_models, register_model

IMAGE_MODELS = [spec.name for spec in list_models() if spec.kind == "image"]


@pytest.mark.parametrize("name", IMAGE_MODELS)
@pytest.mark.parametrize("rnn", ["lstm", "gru", "rnn"])
def test_every_model_forward_backward(name, rnn):
    """Output shape, a backward pass that reaches every parameter, and no NaN, for every registered model."""
    torch.manual_seed(0)
    cfg = ModelConfig(name=name, rnn=rnn, in_channels=3, img_size=(16, 20), num_classes=4, hidden=8, embed=8, cnn_channels=(4, 8))
    model = build_model(cfg)
    x = torch.randn(3, 3, 16, 20)
    logits = model(x)
    assert logits.shape == (3, 4)
    assert torch.isfinite(logits).all()
    logits.logsumexp(1).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", IMAGE_MODELS)
@pytest.mark.parametrize("scan", ["rows", "cols", "patches", "snake"])
@pytest.mark.parametrize("pool, bidirectional, fuse", [("last", True, True), ("mean", False, False)])
def test_model_options(name, scan, pool, bidirectional, fuse):
    cfg = ModelConfig(name=name, scan=scan, patch=4, pool=pool, bidirectional=bidirectional, fuse_global=fuse, in_channels=1, img_size=(28, 28), hidden=8, embed=8, layers=2, cnn_channels=(4, 8))
    assert build_model(cfg)(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_pool_last_uses_both_directions_final_states():
    cfg = ModelConfig(name="region_lstm", pool="last", bidirectional=True, hidden=5, embed=4, img_size=(6, 6), dropout=0.0)
    model = build_model(cfg).eval()
    x = torch.randn(2, 1, 6, 6)
    seq = model.embed(x.reshape(2, 6, 6))
    out, _ = model.reader.rnn(seq)
    expected = torch.cat([out[:, -1, :5], out[:, 0, 5:]], dim=1)  # forward's last step, backward's first
    assert torch.allclose(model.reader(seq), expected, atol=1e-6)


def test_sequence_reader_carries_state_across_windows():
    """What `lstmimg video` relies on: reading a sequence in two windows, the state of the first carried
    into the second, ends where one pass ends (and pools the same with pool="last")."""
    torch.manual_seed(0)
    cfg = ModelConfig(name="lrcn", hidden=6, layers=2, pool="last", dropout=0.0)
    reader = build_model(cfg.replace(img_size=(8, 8), in_channels=3, cnn_channels=(4,), embed=5)).reader.eval()
    assert isinstance(reader.rnn, nn.LSTM) and not reader.rnn.bidirectional and reader.rnn.num_layers == 2
    seq = torch.randn(2, 9, 5)
    whole, (h, c) = reader.read(seq)
    _, state = reader.read(seq[:, :4])
    carried, (h2, c2) = reader.read(seq[:, 4:], state)
    torch.testing.assert_close(carried, whole)
    torch.testing.assert_close(h2, h)
    torch.testing.assert_close(c2, c)


def test_models_use_the_fused_torch_layers():
    for rnn, cls in (("lstm", nn.LSTM), ("gru", nn.GRU), ("rnn", nn.RNN)):
        assert type(build_model(ModelConfig(rnn=rnn)).reader.rnn) is cls


def test_registry_refuses_duplicates_and_unknown_names():
    with pytest.raises(ValueError, match="already registered"):
        register_model("cnn_lstm", "image", "again")(lambda cfg: None)
    with pytest.raises(LstmimgError, match="unknown model 'vit'; registered: "):
        build_model(ModelConfig(name="vit"))
    assert {"region_lstm", "cnn_lstm"} <= set(MODELS)
    assert all(spec.description for spec in list_models())


def test_any_image_size_and_channels():
    for channels, size in ((1, (28, 28)), (3, (32, 48)), (4, (17, 23))):
        for name in IMAGE_MODELS:
            model = build_model(ModelConfig(name=name, in_channels=channels, img_size=size, hidden=8, embed=8, cnn_channels=(4,)))
            assert model(torch.randn(2, channels, *size)).shape == (2, 10)


def test_torchvision_backbone_with_local_weights(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    weights = tmp_path / "resnet18.pt"
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), weights)
    cfg = ModelConfig(name="cnn_lstm", backbone="resnet18", backbone_weights=str(weights), in_channels=1, img_size=(64, 64), hidden=8)
    model = build_model(cfg)
    assert torch.equal(model.cnn[0].weight, reference.conv1.weight)
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 10)
    bad = tmp_path / "wrong.pt"
    torch.save({"fc.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(LstmimgError, match="weights do not fit backbone 'resnet18'"):
        build_model(cfg.replace(backbone_weights=str(bad)))
    with pytest.raises(LstmimgError, match="unknown torchvision backbone 'resnet7'"):
        build_model(cfg.replace(backbone="resnet7", backbone_weights=None))


VIDEO_MODELS = [spec.name for spec in list_models() if spec.kind == "video"]


@pytest.mark.parametrize("name", VIDEO_MODELS)
@pytest.mark.parametrize("rnn", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("pool", ["last", "mean"])
def test_every_video_model_forward_backward(name, rnn, pool):
    """Clips (B, T, C, H, W) -> logits, gradients everywhere, no NaN; any clip length works."""
    torch.manual_seed(0)
    cfg = ModelConfig(name=name, rnn=rnn, pool=pool, in_channels=3, img_size=(16, 20), num_classes=5, hidden=8, embed=8, cnn_channels=(4, 8))
    model = build_model(cfg)
    for t in (1, 7):
        logits = model(torch.randn(2, t, 3, 16, 20))
        assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    logits.sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


def test_video_model_runs_the_cnn_once_over_all_frames():
    model = build_model(ModelConfig(name="lrcn", in_channels=3, img_size=(16, 16), num_classes=2, hidden=8, embed=8, cnn_channels=(4,)))
    calls = []
    model.cnn.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape))
    model(torch.randn(3, 5, 3, 16, 16))
    assert calls == [torch.Size([15, 3, 16, 16])]  # one batched call over B*T frames
    assert model.reader.rnn.bidirectional is False  # forward in time, so state can be carried


@pytest.mark.parametrize("name", ["cnn_lstm", "lrcn"])
def test_channels_last_fast_path_gives_the_same_outputs(name):
    """CNN models run NHWC (faster, measured by bench); their outputs equal a plain NCHW copy's."""
    import copy

    torch.manual_seed(0)
    cfg = ModelConfig(name=name, in_channels=3, img_size=(16, 16), num_classes=4, hidden=8, embed=8, cnn_channels=(4, 8))
    fast = build_model(cfg).eval()
    assert fast.cnn[0].weight.is_contiguous(memory_format=torch.channels_last)
    plain = copy.deepcopy(fast)
    for m in plain.modules():
        for _pname, p in list(m.named_parameters(recurse=False)):
            p.data = p.data.contiguous()
    x = torch.randn(2, 3, 16, 16) if name == "cnn_lstm" else torch.randn(2, 4, 3, 16, 16)
    import lstmimg.models.layers as models_module

    with torch.no_grad():
        fast_out = fast(x)
        original = models_module.channels_last
        models_module.channels_last = lambda t: t.contiguous()
        try:
            plain_out = plain(x)
        finally:
            models_module.channels_last = original
    assert torch.allclose(fast_out, plain_out, atol=1e-5)
