"""Model sections of the bench: training and inference against a plain loop, backends, scaling."""

from __future__ import annotations

import gc
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from lstmimg.bench.timing import Timing, count_flops, measure, measure_pair
from lstmimg.config import ModelConfig, TrainConfig
from lstmimg.data.images import normalize
from lstmimg.models.registry import MODELS, build_model

# The default size of each registered model, as `lstmimg train` builds it on the bundled data.
BENCH_SHAPES = {
    "cnn_lstm": ModelConfig(name="cnn_lstm", in_channels=1, img_size=(28, 28), num_classes=10),
    "region_lstm": ModelConfig(name="region_lstm", in_channels=1, img_size=(28, 28), num_classes=10),
    "lrcn": ModelConfig(name="lrcn", in_channels=3, img_size=(32, 32), num_classes=4),
}
CLIP_LEN = TrainConfig.clip_len


def sample_input(cfg: ModelConfig, batch: int, frames: int = CLIP_LEN) -> torch.Tensor:
    """Random uint8 input of the model's kind: ``(B, C, H, W)`` or clips ``(B, T, C, H, W)``."""
    shape = (batch, cfg.in_channels, *cfg.img_size)
    if MODELS[cfg.name].kind == "video":
        shape = (batch, frames, cfg.in_channels, *cfg.img_size)
    return torch.randint(0, 256, shape, dtype=torch.uint8)


@dataclass
class ModelBench:
    model: str
    params: int
    flops_per_sample: int
    train_samples_per_s: float
    plain_train_samples_per_s: float
    train_ratio: float  # plain time / lstmimg time: >= 0.90 means lstmimg costs at most ~10% more
    infer_batch1_samples_per_s: float
    infer_batch_samples_per_s: float
    plain_infer_batch_samples_per_s: float
    infer_ratio: float
    latency_p50_ms: float
    latency_p95_ms: float
    achieved_gflops: float  # inference at the large batch
    batch: int
    train: Timing
    plain_train: Timing
    infer: Timing | None = None  # the large batch through Predictor
    plain_infer: Timing | None = None
    latency: Timing | None = None  # batch of one

    @property
    def train_spread(self) -> float:
        """The larger spread of the two training timings (see ``Timing.spread``)."""
        return max(self.train.spread, self.plain_train.spread)

    @property
    def infer_spread(self) -> float:
        """The larger spread of the two large-batch inference timings."""
        return max((t.spread for t in (self.infer, self.plain_infer) if t is not None), default=0.0)

    @property
    def latency_spread(self) -> float:
        """The spread of the batch-of-one timings."""
        return self.latency.spread if self.latency is not None else 0.0


def bench_model(name: str, device: torch.device, batch: int = 64, steps: int = 10, repeats: int = 5, latency_runs: int = 50, cfg: ModelConfig | None = None) -> ModelBench:
    """Training and inference speed of one model, lstmimg's paths against a minimal plain loop."""
    from lstmimg.engine.infer.inference import Predictor
    from lstmimg.engine.train.training import Recipe, make_optimizer, make_schedule, train_one_epoch
    from lstmimg.engine.train.trainstate import TrainState

    cfg = cfg or BENCH_SHAPES[name]
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    x = sample_input(cfg, batch)
    y = torch.randint(0, cfg.num_classes, (batch,))
    mean, std = [0.5] * cfg.in_channels, [0.25] * cfg.in_channels
    train_cfg = TrainConfig()
    optimizer = make_optimizer(model, train_cfg)
    schedule = make_schedule(optimizer, train_cfg, 10_000)
    criterion = nn.CrossEntropyLoss(label_smoothing=train_cfg.label_smoothing)
    state = TrainState(model, optimizer, schedule, torch.Generator().manual_seed(0))
    recipe = Recipe(model, criterion, mean, std, device, train_cfg.augment, train_cfg.clip_grad)

    def ours():  # lstmimg's training loop, defaults on (augmentation, clipping, schedule)
        state.step = 0
        train_one_epoch(state, ((x, y) for _ in range(steps)), recipe)

    plain_model = build_model(cfg).to(device).train()
    plain_opt = torch.optim.AdamW(plain_model.parameters(), lr=1e-3)
    xf, yd = normalize(x.to(device), mean, std), y.to(device)

    def plain():  # the textbook loop: forward, loss, backward, step
        for _ in range(steps):
            loss = nn.functional.cross_entropy(plain_model(xf), yd)
            plain_opt.zero_grad()
            loss.backward()
            plain_opt.step()

    train_t, plain_t = measure_pair(ours, plain, repeats, device)
    model.eval()
    plain_model.eval()

    def plain_infer():
        with torch.inference_mode():
            plain_model(normalize(x.to(device), mean, std))

    predictor = Predictor(model, mean, std, device)  # the inference path predict, eval and video use
    infer_t, plain_infer_t = measure_pair(lambda: predictor.probs(x), plain_infer, repeats, device)
    one = x[:1]
    lat = measure(lambda: predictor.probs(one), latency_runs, warmup=3, device=device)
    flops = count_flops(model, normalize(one.to(device), mean, std))
    return ModelBench(
        model=name,
        params=sum(p.numel() for p in model.parameters()),
        flops_per_sample=flops,
        train_samples_per_s=steps * batch / train_t.median,
        plain_train_samples_per_s=steps * batch / plain_t.median,
        train_ratio=round(plain_t.median / train_t.median, 3),
        infer_batch1_samples_per_s=1 / lat.median,
        infer_batch_samples_per_s=batch / infer_t.median,
        plain_infer_batch_samples_per_s=batch / plain_infer_t.median,
        infer_ratio=round(plain_infer_t.median / infer_t.median, 3),
        latency_p50_ms=lat.median * 1000,
        latency_p95_ms=lat.p95 * 1000,
        achieved_gflops=flops * batch / infer_t.median / 1e9,
        batch=batch,
        train=train_t,
        plain_train=plain_t,
        infer=infer_t,
        plain_infer=plain_infer_t,
        latency=lat,
    )


@dataclass
class BackendBench:
    model: str
    backend: str
    status: str  # "ok", or why it is unavailable
    samples_per_s: float | None = None
    speedup: float | None = None  # against eager, same batch
    max_abs_diff: float | None = None  # largest logit difference from eager
    note: str = ""


def _backends(model: nn.Module, x: torch.Tensor, device: torch.device) -> dict[str, Callable[[], Callable[[torch.Tensor], torch.Tensor]]]:
    """Each backend as a factory that prepares it (may raise) and returns a callable on ``x``.
    "eager" is lstmimg's default path (CNNs in channels_last); "NCHW" shows what that layout gains."""

    def eager():
        return model

    def torchscript():
        return torch.jit.trace(model, x, check_trace=False)

    def compiled():
        # nn.LSTM / GRU / RNN make Dynamo break the graph: the CNN part compiles, the recurrent layer runs eagerly
        return torch.compile(model)

    def onnxruntime():
        import io
        import warnings

        import onnxruntime as ort

        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation: kept here, where one fixed shape is timed, because
            # the torch.export-based one takes 2-5 s more per model (measured), and both graphs run at the same speed (docs/export.md)
            torch.onnx.export(model, (x,), buffer, input_names=["x"], output_names=["logits"], dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        # idle ORT threads spin by default and would steal the CPU from whatever is measured next
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        return lambda inp: torch.from_numpy(session.run(None, {"x": inp.cpu().numpy()})[0])

    def bf16_autocast():
        if device.type == "cpu" and not torch.backends.mkldnn.is_available():
            raise RuntimeError("oneDNN is not available")

        def run(inp):
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return model(inp)

        return run

    def contiguous_nchw():  # the layout lstmimg used before channels_last became its default
        import lstmimg.models.layers as models_module

        plain = build_model_like(model)
        for p in plain.parameters():
            p.data = p.data.contiguous()

        def run(inp):
            original, models_module.channels_last = models_module.channels_last, (lambda t: t.contiguous())
            try:
                return plain(inp)
            finally:
                models_module.channels_last = original

        return run

    def one_thread():
        def run(inp):
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return model(inp)
            finally:
                torch.set_num_threads(threads)

        return run

    return {"eager": eager, f"1 thread (eager uses {torch.get_num_threads()})": one_thread, "torchscript": torchscript, "torch.compile": compiled, "onnxruntime": onnxruntime, "bf16 autocast": bf16_autocast, "NCHW (not channels_last)": contiguous_nchw}


def build_model_like(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).eval()


def bench_backends(name: str, device: torch.device, batch: int = 64, repeats: int = 5, cfg: ModelConfig | None = None, only: list[str] | None = None) -> list[BackendBench]:
    """Inference of one model through each backend, side by side; a backend that fails is reported
    as unavailable, with the reason, and the run goes on."""
    cfg = cfg or BENCH_SHAPES[name]
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    x = normalize(sample_input(cfg, batch).to(device), [0.5] * cfg.in_channels, [0.25] * cfg.in_channels)
    with torch.no_grad():  # batch-norm statistics as after training: a fresh model's ran 2x slower on CPU (measured)
        model.train()(x)
    model.eval()
    with torch.inference_mode():
        reference = model(x).float()
    ready: dict[str, tuple[Callable, torch.Tensor, str]] = {}
    failed: dict[str, str] = {}
    for backend, factory in _backends(model, x, device).items():
        if only and backend not in only:
            continue
        try:  # prepare every backend first (export, compile) ...
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if backend == "torch.compile":
                    from torch._dynamo.utils import counters

                    counters.clear()
                t0 = time.perf_counter()
                fn = factory()
                out = fn(x).float()
                first_call = time.perf_counter() - t0
            note = ""
            if backend == "torch.compile":
                breaks = sum(counters["graph_break"].values())
                note = f"{breaks} graph break{'s' if breaks != 1 else ''}; first call (compiling) {first_call:.1f} s"
            elif backend == "onnxruntime":
                note = f"export + session + first call {first_call:.1f} s"
            ready[backend] = (fn, out, note)
        except Exception as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            failed[backend] = f"unavailable: {type(err).__name__}: {first[:120]}"
    # ... then time them round-robin, so machine noise hits every backend alike
    times: dict[str, list[float]] = {b: [] for b in ready}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats):
            for backend, (fn, _, _) in ready.items():
                timing = measure(lambda fn=fn: fn(x), 1, warmup=1, device=device)
                times[backend].append(timing.median)
    eager_median = statistics.median(times["eager"]) if "eager" in times else None
    results = []
    for backend in [b for b in _backends(model, x, device) if b in ready or b in failed]:
        if backend in failed:
            results.append(BackendBench(name, backend, failed[backend]))
            continue
        fn, out, note = ready[backend]
        median = statistics.median(times[backend])
        results.append(BackendBench(
            name, backend, "ok", batch / median, round(eager_median / median, 3) if eager_median else None,
            float((out.cpu() - reference.cpu()).abs().max()), note,
        ))
    ready.clear()  # release the backends (their threads, compiled graphs) before the next model
    gc.collect()
    return results


@dataclass
class ScalingRow:
    model: str
    axis: str  # "steps" (sequence length) or "batch"
    value: int
    train_ms: float  # one training step
    infer_ms: float  # one inference call


def bench_scaling(device: torch.device, repeats: int = 3, lengths=(7, 14, 28, 56, 112), batches=(1, 16, 64, 256)) -> list[ScalingRow]:
    """How time grows with sequence length (region_lstm rows: image height = steps) and batch size."""
    rows = []

    def step_times(cfg: ModelConfig, batch: int) -> tuple[float, float]:
        torch.manual_seed(0)
        model = build_model(cfg).to(device)
        opt = torch.optim.AdamW(model.parameters())
        x = torch.randn(batch, cfg.in_channels, *cfg.img_size, device=device)
        y = torch.randint(0, cfg.num_classes, (batch,), device=device)

        def train_step():
            loss = nn.functional.cross_entropy(model.train()(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        def infer():
            with torch.inference_mode():
                model.eval()(x)

        return measure(train_step, repeats, device=device).median * 1000, measure(infer, repeats, device=device).median * 1000

    for steps in lengths:
        cfg = ModelConfig(name="region_lstm", in_channels=1, img_size=(steps, 28), num_classes=10)
        rows.append(ScalingRow("region_lstm", "steps", steps, *step_times(cfg, 64)))
    for batch in batches:
        rows.append(ScalingRow("region_lstm", "batch", batch, *step_times(BENCH_SHAPES["region_lstm"], batch)))
    return rows


