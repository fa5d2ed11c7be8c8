#!/usr/bin/env bash
# speechocean762 (OpenSLR 101, train split): CTC phone recogniser, then "embedded training":
# the CTC model force-aligns train and dev, and a frame-level model is trained on those
# alignments with the aligned divergence. Both are decoded on the held-out speakers (greedy,
# phone beam + bigram, corpus-lexicon search) and scored (PER on 39 folded phones, WER).
# The default model stacks 3 feature frames (30 ms per model frame: every layer runs at a third
# of the frame rate), which makes training ~3x faster; phones here last 160 ms on average.
#
#   bash recipes/speechocean762/run.sh                          # default size
#   bash recipes/speechocean762/run.sh --corpus /data/speechocean762 --size full
#   bash recipes/speechocean762/run.sh --download true --corpus downloads/speechocean762
#   bash recipes/speechocean762/run.sh --stage 5 --stop-stage 7 trainer.epochs=12   # Hydra overrides
#
# Stages: 0 corpus check/download, 1 prepare, 2 features, 3 train CTC, 4 force-align train+dev,
# 5 train aligned, 6 decode dev, 7 results table. Extra arguments are Hydra overrides of both
# trainings (and of the features stage).
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=0
stop_stage=100
size=default          # tiny (tests) | default | full
corpus=""             # the speechocean762 folder; default ../shared/data/speechocean762 if present
download=false        # true: fetch OpenSLR 101 into --corpus when it is absent
data=data/speechocean762
exp=exp/speechocean762
jobs=$(nproc)         # decoding worker processes
heldout=0.1           # fraction of the speakers held out as dev
pool=""               # more training corpora for CTC (stage 3), "DIR:WEIGHT ...", e.g. "data/synth/train:0.5"
. recipes/lib/parse_options.sh
. recipes/lib/decode.sh

if [ -z "$corpus" ]; then
  if [ -d ../shared/data/speechocean762 ]; then corpus=../shared/data/speechocean762; else corpus=downloads/speechocean762; fi
fi
case "$size" in
  tiny)    prep_opts=(--max-speakers 3 --max-utts-per-speaker 4); model=small   # ~12 + 12 utterances
           ctc_opts=(trainer.epochs=2 trainer.warmup_steps=0 trainer.max_frames=500 trainer.lr=0.01)
           ali_opts=("${ctc_opts[@]}"); model_opts=() ;;
  default) prep_opts=(); model=bilstm; model_opts=(model.stack=3)   # 38 min of training here (docs/recipes/speechocean762.md)
           # small batches: CTC leaves its all-blank plateau after a number of updates, not of frames
           ctc_opts=(trainer.epochs=24 trainer.lr=0.002 trainer.warmup_steps=200 trainer.max_frames=3000 trainer.average_last=3)
           ali_opts=(trainer.epochs=6 trainer.lr=0.001 trainer.warmup_steps=100 trainer.max_frames=6000 trainer.average_last=3) ;;
  full)    prep_opts=(); model=bilstm; model_opts=()
           ctc_opts=(trainer.epochs=30 trainer.max_frames=3000 trainer.average_last=3)
           ali_opts=(trainer.epochs=20 trainer.average_last=3) ;;
  *) echo "$0: --size must be tiny, default or full" >&2; exit 2 ;;
esac
# Per-speaker mean/variance normalisation (Kaldi's apply-cmvn with utt2spk): half the speakers are
# children, and every speaker has their own microphone. Global CMVN gave 47.4% dev PER (CTC greedy),
# per-utterance 43.4%; per speaker: docs/recipes/speechocean762.md. Half the training utterances
# are normalised by their own statistics (augment.utterance_cmvn_prob), so the model also reads a
# recording alone.
feat_opts=(features.cmvn=speaker)
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

# train EXP_DIR OVERRIDES...: a fresh run that replaces an earlier one in EXP_DIR (trainer.overwrite=true:
# re-running a stage is intended), unless trainer.resume=true continues it
train() {
  local dir=$1; shift
  "$PY" -m phonrec.cli.train data=speechocean762 data.phones=$data/phones.txt model=$model "${model_opts[@]}" exp_dir=$dir trainer.overwrite=true \
    "${feat_opts[@]}" "$@" "${overrides[@]}"
}

if run_stage 0 "corpus $corpus"; then
  if [ ! -f "$corpus/train/wav.scp" ]; then
    if [ "$download" != true ]; then
      echo "$0: $corpus/train/wav.scp not found: pass --corpus DIR, or --download true to fetch OpenSLR 101" >&2; exit 1
    fi
    # Not exercised by the tests (no internet there): the official 520 MB archive of OpenSLR 101.
    parent=$(dirname "$corpus"); mkdir -p "$parent"
    url=https://www.openslr.org/resources/101/speechocean762.tar.gz
    if command -v curl >/dev/null; then curl -fL --retry 3 -o "$parent/speechocean762.tar.gz" "$url"
    else wget -O "$parent/speechocean762.tar.gz" "$url"; fi
    tar -xzf "$parent/speechocean762.tar.gz" -C "$parent"   # -> $parent/speechocean762/{train,test,resource,WAVE}
    [ "$(basename "$corpus")" = speechocean762 ] || mv "$parent/speechocean762" "$corpus"
    [ -f "$corpus/train/wav.scp" ] || { echo "$0: download did not produce $corpus/train/wav.scp" >&2; exit 1; }
  fi
fi

if run_stage 1 "prepare $corpus -> $data/{train,dev,lexicon.txt,phones.txt} (held-out speakers = dev), phones.txt"; then
  "$PY" recipes/lib/prepare.py speechocean762 "$corpus" $data --heldout-fraction $heldout "${prep_opts[@]}"
fi

if run_stage 2 "features"; then
  "$PY" -m phonrec.cli.train features data=speechocean762 data.train=$data/train data.dev=$data/dev data.test=null \
    data.cache_dir=$data/cache exp_dir=$exp/features "${feat_opts[@]}" "${overrides[@]}"
fi

if run_stage 3 "train CTC${pool:+ (pooled with $pool)}"; then
  dirs=$data/train; weights=1
  for item in $pool; do dirs+=",${item%:*}"; weights+=",${item##*:}"; done
  train $exp/ctc divergence=ctc "data.train=[$dirs]" "data.train_weights=[$weights]" data.dev=$data/dev \
    data.cache_dir=$data/cache "${ctc_opts[@]}"
fi

if run_stage 4 "force-align train and dev with the CTC model -> $data/{train,dev}_ali"; then
  for split in train dev; do
    "$PY" -m phonrec.cli.align $exp/ctc/model $data/$split $data/${split}_ali
  done
fi

if run_stage 5 "train a frame-level model on the CTC alignments (aligned divergence)"; then
  train $exp/aligned divergence=aligned data.train=$data/train_ali data.dev=$data/dev_ali \
    data.cache_dir=$data/cache_ali trainer.init_from=$exp/ctc/model "${ali_opts[@]}"
fi

if run_stage 6 "decode dev (greedy, phone beam, lexicon)"; then
  lexicon=$data/lexicon.txt
  decode_grid $exp $data "ctc aligned" dev "greedy beam lexicon"
  record_defaults $exp $data "ctc aligned"
fi

if run_stage 7 "results table"; then
  "$PY" recipes/lib/results_table.py --exp $exp --models ctc aligned --splits dev --out $exp/results.md
  log "models: $exp/ctc/model $exp/aligned/model; table: $exp/results.md"
fi
