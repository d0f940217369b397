#!/usr/bin/env bash
# The GPU check of the pre-training stage, for a lent GPU machine (one H100/H200-class GPU, < 8 min):
#   1. the GPU-marked tests (pytest -m gpu);
#   2. a bf16 ZeRO-0 and a bf16 ZeRO-2 run of each objective (mlm, tlm, word_aligned, weam) on an
#      mBERT-size model built from config (12 x 768, vocabulary 119,547; nothing downloaded) at
#      seq 128, batch 32, through weam.training.api.pretrain, and the same model, batch and precision
#      under the Hugging Face Trainer + DeepSpeed: benchmarks/pretrain_bench.py prints tokens/s,
#      TFLOP/s, MFU (against the bf16 peak table in training/metrics.py) and peak memory per GPU.
#      ZeRO 0 is the single-GPU default (configs/pretrain/weam-mbert.yaml); 2, what multi-node runs use.
# Each phase stops at its timeout (TESTS_S + BENCH_S = 480 s, 8 min); --dry-run prints that plan.
#
#   benchmarks/gpu_check.sh [OUT]            # on the GPU machine, from the repository root or anywhere;
#                                            # OUT (optional): gpu_check.log and pretrain_bench.json
#   benchmarks/gpu_check.sh --dry-run [OUT]  # anywhere (CPU): validate every run's config, collect the tests
#
# Environment: PYTHON (default python), GPU_CHECK_STEPS (timed steps per run, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
STEPS=${GPU_CHECK_STEPS:-20}
TESTS_S=150 BENCH_S=330
DRY=0
if [[ "${1:-}" == --dry-run ]]; then DRY=1; shift; fi
OUT=${1:-}
if [[ $# -gt 1 || "$OUT" == -* ]]; then echo "usage: $0 [--dry-run] [OUT]" >&2; exit 2; fi
if [[ -n $OUT ]]; then
  mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
  exec > >(tee "$OUT/gpu_check.log") 2>&1
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true \
  RAY_USAGE_STATS_ENABLED=0 DS_BUILD_OPS=0 TOKENIZERS_PARALLELISM=false
OBJECTIVES=(mlm tlm word_aligned weam) ZEROS=(0 2)
BENCH=(benchmarks/pretrain_bench.py --preset mbert-base --precision bf16 --zero "${ZEROS[@]}" --seq 128 --batch 32
       --objectives "${OBJECTIVES[@]}" --steps "$STEPS" --warmup 5 --lines 3000)
RUNS=$(( (${#OBJECTIVES[@]} + 1) * ${#ZEROS[@]} ))  # + the HF Trainer row per ZeRO stage
echo "plan (one H100/H200-class GPU): 1. GPU-marked tests, at most ${TESTS_S} s; 2. ${RUNS} benchmark runs" \
     "(${OBJECTIVES[*]} and hf-trainer x ZeRO ${ZEROS[*]}, $STEPS timed + 5 warm-up steps each), at most ${BENCH_S} s;" \
     "total at most $((TESTS_S + BENCH_S)) s ($(( (TESTS_S + BENCH_S + 59) / 60 )) min), each phase stopped at its limit"

if [[ $DRY == 1 ]]; then
  export DS_ACCELERATOR=cpu
  echo "== 1. GPU-marked tests (collected; they skip without CUDA)"
  "$PYTHON" -m pytest -m gpu --collect-only -q tests/training | tail -n 20
  echo "== 2. bf16 ZeRO-${ZEROS[0]}/${ZEROS[1]} runs of every objective + HF Trainer baseline (configs validated, nothing trained)"
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
timeout "$TESTS_S" "$PYTHON" -m pytest -m gpu -q -rs tests/training
echo "== 2. bf16 ZeRO-${ZEROS[0]}/${ZEROS[1]} runs of every objective on mBERT-size, and the HF Trainer + DeepSpeed baseline"
timeout "$BENCH_S" "$PYTHON" "${BENCH[@]}" ${OUT:+--json "$OUT/pretrain_bench.json"}
echo "gpu_check: done in $((SECONDS - started)) s"
