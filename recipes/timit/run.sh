#!/usr/bin/env bash
# TIMIT (LDC93S1, licensed from the LDC: bring your own copy): the standard phone-recognition
# set-up. Train on the 462 training speakers (SA sentences excluded), develop on Kaldi's
# 50-speaker dev set, test on the 24-speaker core test set. Models: a frame-level BiLSTM trained
# with the aligned divergence on the hand-labelled .PHN segmentations, and a CTC BiLSTM. Both are
# decoded (greedy; phone beam with a bigram of the training phones) and scored on the 39 folded
# phones without silence (Lee & Hon), the number published TIMIT PERs report.
#
#   bash recipes/timit/run.sh --corpus /corpora/TIMIT                 # 61 phones, default size
#   bash recipes/timit/run.sh --corpus /corpora/TIMIT --phones 48     # train on the 48 classes
#   bash recipes/timit/run.sh --corpus /corpora/TIMIT --stage 3 model.hidden=384   # Hydra overrides
#
# Stages: 0 corpus check, 1 prepare, 2 features, 3 train aligned, 4 train CTC,
# 5 decode dev and test, 6 results table.
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=0
stop_stage=100
size=default          # tiny (tests) | default | full
corpus=""             # the TIMIT folder (TRAIN/ and TEST/, any case, directly or one folder below)
phones=61             # 61: TIMIT's phones | 48: Lee & Hon's classes (folded at training time)
data=data/timit
exp=exp/timit
jobs=$(nproc)         # decoding worker processes
. recipes/lib/parse_options.sh
. recipes/lib/decode.sh

[ -n "$corpus" ] || { echo "$0: pass --corpus /path/to/TIMIT (LDC93S1)" >&2; exit 2; }
case "$size" in
  tiny)    model=small; opts=(trainer.epochs=2 trainer.warmup_steps=0 trainer.max_frames=500 trainer.lr=0.01)
           ctc_opts=("${opts[@]}") ;;
  default) model=small; opts=(trainer.epochs=10 trainer.warmup_steps=200); ctc_opts=(trainer.epochs=15 trainer.warmup_steps=200) ;;
  full)    model=bilstm; opts=(trainer.epochs=25 trainer.average_last=3); ctc_opts=(trainer.epochs=40 trainer.average_last=3) ;;
  *) echo "$0: --size must be tiny, default or full" >&2; exit 2 ;;
esac
case "$phones" in
  61) data_opts=(data=timit data.train=$data/train data.dev=$data/dev data.test=$data/test) ;;
  48) # recipes/lib/prepare.py writes this data config: phones48.txt and phone_map = TIMIT_61_TO_48
      data_opts=("hydra.searchpath=[file://$(realpath -m "$data")/conf]" data=timit48) ;;
  *) echo "$0: --phones must be 61 or 48" >&2; exit 2 ;;
esac
data_opts+=(data.cache_dir=$data/cache)
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
mexp=$exp/phones$phones

# train EXP_DIR OVERRIDES...: a fresh run that replaces an earlier one in EXP_DIR (trainer.overwrite=true:
# re-running a stage is intended), unless trainer.resume=true continues it
train() {
  local dir=$1; shift
  "$PY" -m phonrec.cli.train "${data_opts[@]}" model=$model exp_dir=$dir trainer.overwrite=true "$@" "${overrides[@]}"
}

if run_stage 0 "corpus $corpus"; then
  [ -d "$corpus" ] || { echo "$0: TIMIT folder $corpus not found" >&2; exit 1; }
fi

if run_stage 1 "prepare $corpus -> $data/{train,dev,test} (61 phones, .PHN frame alignments)"; then
  mkdir -p "$data"
  "$PY" recipes/lib/prepare.py timit "$corpus" $data
fi

if run_stage 2 "features and global CMVN statistics"; then
  "$PY" -m phonrec.cli.train features "${data_opts[@]}" exp_dir=$exp/features "${overrides[@]}"
fi

if run_stage 3 "train aligned ($phones phones, .PHN alignments)"; then
  train $mexp/aligned divergence=aligned "${opts[@]}"
fi

if run_stage 4 "train CTC ($phones phones)"; then
  train $mexp/ctc divergence=ctc "${ctc_opts[@]}"
fi

if run_stage 5 "decode dev and test (greedy, phone beam)"; then
  decode_grid $mexp $data "aligned ctc" "dev test" "greedy beam"
fi

if run_stage 6 "results table (PER on 39 folded phones)"; then
  "$PY" recipes/lib/results_table.py --exp $mexp --models aligned ctc --splits dev test --decoders greedy beam \
    --out $mexp/results.md
  log "models: $mexp/aligned/model $mexp/ctc/model; table: $mexp/results.md"
fi
