#!/usr/bin/env bash
# Folds tiny-llama and kv-heavy at 8K and 32K on an accelerator and on the CPU, and prints the
# largest |logit difference| and tokens/s of both (kvfold bench device). For a GPU host with a
# fresh checkout: installs the workspace, switches onnxruntime-node to its CUDA build when the
# device is cuda, then runs the check. Usage: scripts/device-check.sh [cuda|webgpu] (default cuda).
# Writes bench-results/device.json. Meant to finish within 8 minutes on one GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
device="${1:-cuda}"
command -v pnpm >/dev/null || npm i -g pnpm@12.4.2
[ -d node_modules ] || pnpm install --frozen-lockfile
[ "$device" = cuda ] && pnpm gpu:install-cuda
# The CPU side of each 32K case is capped at 8K tokens: the comparison covers those, and the CPU
# fold of kv-heavy at 32K alone would take longer than the whole check may.
exec node apps/cli/dist/main.mjs bench device --device "$device" \
  --cases tiny-llama:8k,tiny-llama:32k,kv-heavy:8k,kv-heavy:32k --cpu-tokens 8192 --out bench-results/device.json
