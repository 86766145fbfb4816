#!/usr/bin/env bash
# Tunes every backend on a validation split and compares them on the test split, for both
# shared datasets; the README's results tables come from this. Needs ../shared/data.
# Usage: bash benchmarks/real_data_results.sh [OUTDIR]   (about 40 minutes on 2 cores)
# TUNE="rp3beta edlae" bash benchmarks/real_data_results.sh OUTDIR  tunes only those backends
# (the others keep the parameters already in OUTDIR; "recency" then tunes each one's recency
# half-life and "blend" pairs the three best, see bench_models.py tune-recency and tune-blend);
# the comparison runs every backend that has parameters in OUTDIR, and popularity.
# CELLS="movielens-loo online-retail-ratio" picks the cells (default "movielens online-retail"):
#   movielens            ml-latest-small rating >= 4, per-customer 80/20 holdout (ratio)
#   online-retail        Online Retail, leave-one-out of each customer's latest purchase
#   movielens-loo        ml-latest-small rating >= 4, leave-one-out latest
#   online-retail-ratio  Online Retail, per-customer 80/20 holdout
# Then: python benchmarks/bench_models.py compare OUTDIR  (per-customer NDCG@10, bootstrap).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results}
data=../shared/data
mkdir -p "$out"
tune_all="svd als bpr itemknn ease rp3beta edlae ials sparse_ease"
tune_only=${TUNE:-$tune_all recency blend}
cells=${CELLS:-movielens online-retail}

tune() {  # name, backend, then growthrec tune options
  local name=$1 backend=$2; shift 2
  case " $tune_only " in *" $backend "*) ;; *) return 0 ;; esac
  growthrec tune "$@" --model "$backend" --output "$out/$name" --json > "$out/$name-tune-$backend.json"
}

run() {  # name, data options..., then --
  local name=$1; shift
  local opts=()
  while [ "$1" != "--" ]; do opts+=("$1"); shift; done; shift
  tune "$name" svd "${opts[@]}" --grid factors=16,32,64,128,256
  tune "$name" als "${opts[@]}" --grid factors=64,128 --grid regularization=0.01,1,10,30,100 \
    --grid alpha=1,5,20 --grid confidence=none,bm25
  tune "$name" bpr "${opts[@]}" --grid factors=64,128 --grid learning_rate=0.01,0.05 \
    --grid regularization=0.001,0.01 --grid iterations=100,300
  tune "$name" itemknn "${opts[@]}" --grid neighbors=20,50,100,200,400 --grid shrink=0,10,50
  tune "$name" ease "${opts[@]}" --grid l2=25,50,100,200,500,1000
  # The models of issue 16.
  tune "$name" rp3beta "${opts[@]}" --grid alpha=0.4,0.6,0.8,1.0 --grid beta=0.2,0.4,0.6 \
    --grid neighbors=50,200
  tune "$name" edlae "${opts[@]}" --grid dropout=0.1,0.25,0.4,0.5 --grid l2=25,50,100,200 \
    --grid variant=edlae,dlae
  tune "$name" ials "${opts[@]}" --grid factors=128,256 --grid unobserved_weight=0.1,0.3 \
    --grid nu=0,1 --grid regularization=0.003,0.01,0.03,1,3,10
  tune "$name" sparse_ease "${opts[@]}" --grid l2=50,100,200,400 --grid neighbors=30,50,100 \
    --grid dropout=0,0.2
  # Each tuned backend's recency half-life, on validation (1, 2, 5, 10, 20 or off).
  case " $tune_only " in *" recency "*)
    python benchmarks/bench_models.py tune-recency "$out" "$name" > "$out/$name-tune-recency.txt" ;;
  esac
  # A blend of two of the cell's three best (on validation), its weight tuned on validation too.
  case " $tune_only " in *" blend "*)
    python benchmarks/bench_models.py tune-blend "$out" "$name" > "$out/$name-tune-blend.txt" ;;
  esac
  local models=""
  for backend in $tune_all blend; do
    if [ -e "$out/$name/$backend.params.json" ]; then models+="$backend,"; fi
  done
  growthrec compare "${opts[@]}" --models "${models}popularity" --tuned "$out/$name" \
    --k 10 --json > "$out/$name-compare.json"
}

movielens=(--data "$data/ml-latest-small/ratings.csv" --preset movielens --min-weight 4)
retail=(--data "$data/online-retail/online_retail.parquet" --preset online-retail)
ratio=(--protocol ratio --test-ratio 0.2)
latest=(--protocol leave-one-out --by latest)
for cell in $cells; do
  case $cell in
    movielens) run movielens "${movielens[@]}" "${ratio[@]}" -- ;;
    online-retail) run online-retail "${retail[@]}" "${latest[@]}" -- ;;
    movielens-loo) run movielens-loo "${movielens[@]}" "${latest[@]}" -- ;;
    online-retail-ratio) run online-retail-ratio "${retail[@]}" "${ratio[@]}" -- ;;
    *) echo "unknown cell $cell (movielens, online-retail, movielens-loo, online-retail-ratio)" >&2
      exit 2 ;;
  esac
done
