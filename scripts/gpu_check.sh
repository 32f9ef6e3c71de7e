#!/usr/bin/env bash
# GPU check: on a CUDA machine, train the default image and video models with and without AMP for a
# few hundred steps, run `lstmimg bench --device cuda` and benchmarks/lstm_peak.py (the fraction of the
# GPU's peak the LSTM reaches), and print one table. Needs the package
# installed (pip install .) and a CUDA GPU; writes to ${OUT:-./gpu_check}.
#   bash scripts/gpu_check.sh
set -euo pipefail
OUT=${OUT:-./gpu_check}
mkdir -p "$OUT"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU here')"
python -c "import torch; print('GPU:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
CLIPS=$(python -c "from lstmimg.sample import sample_data_dir; print(sample_data_dir() / 'clips')")
# digits: 4,000 images / batch 64 = 63 steps an epoch: 5 epochs = 315 steps; clips: 320 / 64 = 5 steps, 60 epochs = 300
# (--batch-size and --clips-per-video given, so the sizes fitted to small sets do not change these counts)
for amp in amp no-amp; do
  lstmimg train --device cuda --"$amp" --epochs 5 --batch-size 64 --out "$OUT/image-$amp" --exist-ok > "$OUT/image-$amp.log" 2>&1
  lstmimg train "$CLIPS" --device cuda --"$amp" --epochs 60 --batch-size 64 --clips-per-video 1 --out "$OUT/video-$amp" --exist-ok > "$OUT/video-$amp.log" 2>&1
done
lstmimg bench --device cuda --skip startup --json "$OUT/bench_cuda.json" | tee "$OUT/bench_cuda.txt"
# the fused LSTM's TFLOP/s against the GPU's own measured matmul peak, fp32 and bf16
python "$(dirname "$0")/../benchmarks/lstm_peak.py" --device cuda --json "$OUT/lstm_peak.json" | tee "$OUT/lstm_peak.txt"
python - "$OUT" <<'PY'
import csv, json, sys
from pathlib import Path
out = Path(sys.argv[1])
print(f"{'run':<16} {'amp':<9} {'epochs':>6} {'train s':>8} {'samples/s (median epoch)':>25} {'val acc':>8}")
for kind in ("image", "video"):
    for amp in ("amp", "no-amp"):
        run = out / f"{kind}-{amp}"
        s = json.loads((run / "summary.json").read_text())
        rates = sorted(float(r["samples_per_s"]) for r in csv.DictReader(open(run / "metrics.csv")))
        print(f"{kind:<16} {s['amp']:<9} {s['epochs']:>6} {s['train_seconds']:>8} {rates[len(rates) // 2]:>25} {s['val_accuracy']:>8}")
PY
