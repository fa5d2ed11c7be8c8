#!/usr/bin/env bash
# The packaged English model (phonrec/pretrained/en) from scratch, in one command, with its model
# card's figures measured on what this run trained:
#
#   bash recipes/pretrained_en/run.sh                 # about 40 min on 2 cores -> exp/pretrained_en/en
#   bash recipes/pretrained_en/run.sh --stage 4       # re-measure and re-export a trained model
#   bash recipes/pretrained_en/run.sh --size tiny     # the tests' version: minutes, figures meaningless
#
# Stages:
#   1 the main job's synthetic corpus (recipes/synth stage 1 -> data/synth; kept when it exists)
#   2 speechocean762: corpus check, prepare (12 held-out speakers = dev), features (its stages 0-2)
#   3 CTC training on speechocean762 train pooled with data/synth/train, augment=default (its stage 3)
#   4 measure: greedy PER on speechocean762 dev and on the unseen synthetic voice awb (data/synth/test)
#     with one torch thread (the RTF); the aligner's boundary_shift_ms calibrated on the synthetic
#     dev voices (seen in training), then boundary accuracy of phonrec-align (CTC spans, pauses
#     fitted to the signal's energy, phone edges to its spectral change) on awb
#     (bench/boundaries.py --calibrate)
#   5 facts.json (recipes/lib/card_facts.py: recipes/speechocean762/model_card_facts.json + stage 4)
#     and phonrec-export --fp16 into $exp/en
# It never writes into phonrec/pretrained: compare $exp/en/MODEL_CARD.md with the packaged
# one, then copy the export there by hand. Extra arguments are Hydra overrides of the training.
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=1
stop_stage=100
size=default          # default | tiny (tests)
corpus=""             # the speechocean762 folder (default: the speechocean762 recipe's)
synth=""              # the synthetic corpus (default data/synth, tiny: data/synth_tiny)
data=""               # speechocean762's prepared data (default data/speechocean762, tiny: ..._tiny)
exp=exp/pretrained_en
overwrite=false       # true: replace an earlier export in $exp/en
. recipes/lib/parse_options.sh

case "$size" in
  default) : "${synth:=data/synth}" "${data:=data/speechocean762}"; bound_opts=(--calibrate "$synth/dev") ;;
  # tiny: no calibration (an untrained model's boundaries are anywhere: its shift would be refused)
  tiny)    : "${synth:=data/synth_tiny}" "${data:=data/speechocean762_tiny}"; bound_opts=(--limit 20) ;;
  *) echo "$0: --size must be default or tiny" >&2; exit 2 ;;
esac
so762=$data
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
so762_opts=(--size "$size" --data "$so762" --exp "$exp")
[ -n "$corpus" ] && so762_opts+=(--corpus "$corpus")
model=$exp/ctc/model
recipe_command="bash recipes/pretrained_en/run.sh${corpus:+ --corpus $corpus}${overrides[*]:+ ${overrides[*]}}"

if run_stage 1 "synthetic corpus -> $synth"; then
  if [ -f "$synth/train/wav.scp" ]; then log "$synth exists: kept"
  else bash recipes/synth/run.sh --size "$size" --data "$synth" --stage 0 --stop-stage 1; fi
fi

if run_stage 2 "speechocean762 prepare and features -> $so762"; then
  bash recipes/speechocean762/run.sh "${so762_opts[@]}" --stage 0 --stop-stage 2
fi

if run_stage 3 "train CTC on speechocean762 + $synth/train, augment=default -> $model"; then
  bash recipes/speechocean762/run.sh "${so762_opts[@]}" --stage 3 --stop-stage 3 --pool "$synth/train:1" \
    augment=default "${overrides[@]}"
fi

if run_stage 4 "measure: PER on $so762/dev and $synth/test, boundaries on $synth/test"; then
  for split in "$so762/dev" "$synth/test"; do
    OMP_NUM_THREADS=1 "$PY" -m phonrec.cli.decode model_dir=$model data_dir=$split decoder=greedy num_threads=1 \
      out_dir=$exp/measure/decode-$(basename "$(dirname "$split")")-$(basename "$split") >/dev/null
  done
  OMP_NUM_THREADS=1 PYTHONPATH=. "$PY" bench/boundaries.py --ctc-model $model --data $synth/test \
    "${bound_opts[@]}" --json $exp/measure/boundaries.json | tail -n 12
fi

if run_stage 5 "facts.json and the fp16 export -> $exp/en"; then
  m=$exp/measure
  PYTHONPATH=. "$PY" recipes/lib/card_facts.py --template recipes/speechocean762/model_card_facts.json \
    --dev-report "$m/decode-$(basename "$so762")-dev/report.json" \
    --test-report "$m/decode-$(basename "$synth")-test/report.json" \
    --boundaries $m/boundaries.json --recipe-command "$recipe_command" --out $exp/facts.json
  export_opts=(--fp16 --card-json $exp/facts.json)
  [ "$overwrite" = true ] && export_opts+=(--overwrite)
  "$PY" -m phonrec.cli.export $model $exp/en "${export_opts[@]}"
  log "export: $exp/en (card $exp/en/MODEL_CARD.md); compare with phonrec/pretrained/en/MODEL_CARD.md"
fi
