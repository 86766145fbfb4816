#!/usr/bin/env bash
# Tunes every backend on a validation split and compares them on the test split, for both
# shared datasets; the README's results tables come from this. Needs ../shared/data.
# Usage: bash benchmarks/real_data_results.sh [OUTDIR]   (about 10 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results}
data=../shared/data
mkdir -p "$out"

run() {  # name, data options..., then --
  local name=$1; shift
  local opts=()
  while [ "$1" != "--" ]; do opts+=("$1"); shift; done; shift
  growthrec tune "${opts[@]}" --model svd --grid factors=16,32,64,128,256 --output "$out/$name" --json > "$out/$name-tune-svd.json"
  growthrec tune "${opts[@]}" --model als --grid factors=64,128 --grid regularization=0.01,1,10,30,100 \
    --grid alpha=1,5,20 --grid weighting=none,bm25 --output "$out/$name" --json > "$out/$name-tune-als.json"
  growthrec tune "${opts[@]}" --model bpr --grid factors=64,128 --grid learning_rate=0.01,0.05 \
    --grid regularization=0.001,0.01 --grid iterations=100,300 --output "$out/$name" --json > "$out/$name-tune-bpr.json"
  growthrec tune "${opts[@]}" --model itemknn --grid neighbors=20,50,100,200,400 --grid shrink=0,10,50 \
    --output "$out/$name" --json > "$out/$name-tune-itemknn.json"
  growthrec tune "${opts[@]}" --model ease --grid l2=25,50,100,200,500,1000 \
    --output "$out/$name" --json > "$out/$name-tune-ease.json"
  growthrec compare "${opts[@]}" --models svd,als,bpr,itemknn,ease,popularity --tuned "$out/$name" \
    --k 10 --json > "$out/$name-compare.json"
}

run movielens --data "$data/ml-latest-small/ratings.csv" --preset movielens --min-weight 4 \
  --protocol ratio --test-ratio 0.2 --
run online-retail --data "$data/online-retail/online_retail.parquet" --preset online-retail \
  --protocol leave-one-out --by latest --
