#!/usr/bin/env bash
# Issue 16, cell 1 (ml-latest-small rating >= 4, ratio 0.2): finer validation grids for the new
# models around the optima of real_data_results.sh, then the test comparison against ease and als
# tuned with real_data_results.sh's own grids. Every choice is made on the validation split that
# `growthrec tune` carves from train; the test split is read only by the final compare.
# Usage: bash benchmarks/real_data_finer.sh OUTDIR   (about 30 minutes on one core)
# SKIP_BASELINES=1 keeps ease/als parameters already in OUTDIR/movielens (copied from an
# earlier real_data_results.sh run). Then: python benchmarks/bench_models.py compare OUTDIR movielens
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: real_data_finer.sh OUTDIR}
data=../shared/data
name=movielens
opts=(--data "$data/ml-latest-small/ratings.csv" --preset movielens --min-weight 4
  --protocol ratio --test-ratio 0.2)
mkdir -p "$out/$name"

if [ -z "${SKIP_BASELINES:-}" ]; then  # today's backends, real_data_results.sh's grids
  CELLS=$name TUNE="ease als" bash benchmarks/real_data_results.sh "$out"
fi

tune() {  # backend, then growthrec tune options
  local backend=$1; shift
  growthrec tune "${opts[@]}" "$@" --model "$backend" --output "$out/$name" --json \
    > "$out/$name-tune-$backend.json"
}

# real_data_results.sh found dlae at dropout 0.5, l2 200 (both at its grid's edge), and
# sparse_ease at dropout 0.2 (its edge); these grids reach past every optimum they find.
tune edlae --grid variant=edlae,dlae --grid dropout=0.3,0.4,0.5,0.6,0.7,0.8 \
  --grid l2=50,75,100,150,200,300,400
tune sparse_ease --grid l2=25,50,100 --grid neighbors=30,50,75 \
  --grid dropout=0.1,0.2,0.3,0.4,0.5,0.6,0.7
tune ials --grid factors=256,512 --grid unobserved_weight=0.1,0.3,1 \
  --grid regularization=0.003,0.01,0.03 --grid nu=1
growthrec compare "${opts[@]}" --models ease,als,edlae,sparse_ease,ials --tuned "$out/$name" \
  --k 10 --json > "$out/$name-compare.json"
