#!/usr/bin/env bash
# The GPU check of the pre-training stage, for a lent GPU machine (one H100/H200-class GPU, < 8 min):
#   1. the GPU-marked tests (pytest -m gpu);
#   2. a bf16 ZeRO-2 and a bf16 ZeRO-3 run of each objective (mlm, tlm, word_aligned, weam) on an
#      mBERT-size model built from config (12 x 768, vocabulary 119,547; nothing downloaded) at
#      seq 128, batch 32, through weam.training.api.pretrain, and the same model, batch and precision
#      under the Hugging Face Trainer + DeepSpeed: benchmarks/pretrain_bench.py prints tokens/s,
#      TFLOP/s, MFU (against the bf16 peak table in training/metrics.py) and peak memory per GPU.
#
#   benchmarks/gpu_check.sh            # on the GPU machine, from the repository root or anywhere
#   benchmarks/gpu_check.sh --dry-run  # anywhere (CPU): validate every run's config, collect the tests
#
# Environment: PYTHON (default python), GPU_CHECK_STEPS (timed steps per run, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
STEPS=${GPU_CHECK_STEPS:-20}
DRY=0
case "${1:-}" in
  --dry-run) DRY=1 ;;
  "") ;;
  *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true \
  RAY_USAGE_STATS_ENABLED=0 DS_BUILD_OPS=0 TOKENIZERS_PARALLELISM=false
BENCH=(benchmarks/pretrain_bench.py --preset mbert-base --precision bf16 --zero 2 3 --seq 128 --batch 32
       --objectives mlm tlm word_aligned weam --steps "$STEPS" --warmup 5 --lines 3000)

if [[ $DRY == 1 ]]; then
  export DS_ACCELERATOR=cpu
  echo "== 1. GPU-marked tests (collected; they skip without CUDA)"
  "$PYTHON" -m pytest -m gpu --collect-only -q tests/training | tail -n 20
  echo "== 2. bf16 ZeRO-2/3 runs of every objective + HF Trainer baseline (configs validated, nothing trained)"
  "$PYTHON" "${BENCH[@]}" --dry-run
  echo "gpu_check dry run: ok"
  exit 0
fi

"$PYTHON" - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA GPU visible (use --dry-run on CPU)")
print(f"GPU: {torch.cuda.get_device_name()} x {torch.cuda.device_count()}, torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}")
PY
export DS_ACCELERATOR=cuda
started=$SECONDS
echo "== 1. GPU-marked tests"
timeout 150 "$PYTHON" -m pytest -m gpu -q -rs tests/training
echo "== 2. bf16 ZeRO-2/3 runs of every objective on mBERT-size, and the HF Trainer + DeepSpeed baseline"
timeout 330 "$PYTHON" "${BENCH[@]}"
echo "gpu_check: done in $((SECONDS - started)) s"
