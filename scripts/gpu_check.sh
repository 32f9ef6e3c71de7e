#!/usr/bin/env bash
# GPU check: on a CUDA machine, measure the fraction of the GPU's peak the fused LSTM reaches
# (benchmarks/lstm_peak.py), train the default image and video models with and without AMP for a few
# hundred steps, check nccl (DDP over every GPU when there are several; else a one-process nccl group's
# all_reduce and broadcast), run `lstmimg bench --device cuda`, time whole commands on cpu and cuda
# side by side (benchmarks/gpu_pace.py: default train on the bundled digits and clips, predict over 20,000
# JPEGs and video on a 720p clip, each against decode-only; PACE_ROUNDS rounds, default 1), and print one table. Needs the package
# installed (pip install .) and a CUDA GPU; writes to ${OUT:-./gpu_check}. Each step has a time limit
# (STEP_S, default 600 s) and a failed step does not stop the others; the exit code says whether all passed.
#   bash scripts/gpu_check.sh
set -uo pipefail
OUT=${OUT:-./gpu_check}
STEP_S=${STEP_S:-600}
mkdir -p "$OUT"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU here')" || exit 1
python -c "import torch; print('GPU:', torch.cuda.get_device_name(0), '| torch', torch.__version__, '| cuDNN', torch.backends.cudnn.version())"
failed=0
step() {  # step NAME CMD...: run CMD with a time limit, print how long it took
  local name=$1 t0=$SECONDS; shift
  timeout "$STEP_S" "$@"; local rc=$?
  echo "[$name] exit $rc in $((SECONDS - t0)) s"
  [ "$rc" -eq 0 ] || failed=1
}
# the fused LSTM's TFLOP/s against the GPU's own measured matmul peak, fp32 and bf16
step lstm_peak python "$(dirname "$0")/../benchmarks/lstm_peak.py" --device cuda --json "$OUT/lstm_peak.json"
CLIPS=$(python -c "from lstmimg.sample import sample_data_dir; print(sample_data_dir() / 'clips')")
# digits: 4,000 images / batch 64 = 63 steps an epoch: 5 epochs = 315 steps; clips: 320 / 64 = 5 steps, 60 epochs = 300
# (--batch-size and --clips-per-video given, so the sizes fitted to small sets do not change these counts)
for amp in amp no-amp; do
  step "image-$amp" lstmimg train --device cuda --"$amp" --epochs 5 --batch-size 64 --out "$OUT/image-$amp" --exist-ok
done
NGPU=$(python -c "import torch; print(torch.cuda.device_count())")
if [ "$NGPU" -gt 1 ]; then
  step "nccl-ddp-$NGPU" lstmimg train --device cuda --devices "$NGPU" --epochs 2 --batch-size 64 --out "$OUT/image-ddp" --exist-ok
else  # one GPU: a second nccl rank would need a second GPU; check the library and the collectives training uses
  step nccl-1 python - <<'PY'
import os, time
import torch, torch.distributed as dist
os.environ.setdefault("MASTER_ADDR", "127.0.0.1"); os.environ.setdefault("MASTER_PORT", "29517")
dist.init_process_group("nccl", rank=0, world_size=1)
x = torch.ones(64 * 2**20, device="cuda")  # 256 MiB
dist.all_reduce(x); torch.cuda.synchronize()
t0 = time.perf_counter()
for _ in range(10):
    dist.all_reduce(x)
torch.cuda.synchronize()
flag = torch.tensor([1], device="cuda"); dist.broadcast(flag, 0)
print(f"nccl {torch.cuda.nccl.version()}: all_reduce of 256 MiB {(time.perf_counter() - t0) / 10 * 1e3:.2f} ms (one rank), broadcast ok, sum {x[0].item():.0f}")
dist.destroy_process_group()
PY
fi
for amp in amp no-amp; do
  step "video-$amp" lstmimg train "$CLIPS" --device cuda --"$amp" --epochs 60 --batch-size 64 --clips-per-video 1 --out "$OUT/video-$amp" --exist-ok
done
step bench lstmimg bench --device cuda --skip startup --json "$OUT/bench_cuda.json"
step pace python "$(dirname "$0")/../benchmarks/gpu_pace.py" --devices cpu,cuda --rounds "${PACE_ROUNDS:-1}" --work "$OUT/pace" --json "$OUT/gpu_pace.json"
python - "$OUT" <<'PY'
import csv, json, sys
from pathlib import Path
out = Path(sys.argv[1])
print(f"{'run':<16} {'amp':<9} {'epochs':>6} {'train s':>8} {'samples/s (median epoch)':>25} {'val acc':>8}")
for kind in ("image", "video"):
    for amp in ("amp", "no-amp"):
        run = out / f"{kind}-{amp}"
        if not (run / "summary.json").exists():
            print(f"{kind:<16} {amp:<9} (no summary)")
            continue
        s = json.loads((run / "summary.json").read_text())
        rates = sorted(float(r["samples_per_s"]) for r in csv.DictReader(open(run / "metrics.csv")))
        print(f"{kind:<16} {s['amp']:<9} {s['epochs']:>6} {s['train_seconds']:>8} {rates[len(rates) // 2]:>25} {s['val_accuracy']:>8}")
PY
exit $failed
