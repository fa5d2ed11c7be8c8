#!/usr/bin/env bash
# Free Spoken Digit Dataset: isolated digits of one held-out speaker, recognised two ways.
#  a) sequence classification: one label per recording (its digit word), a BiLSTM trained with the
#     weighted frame divergence under each weighting (uniform, last, linear); accuracy on the
#     held-out speaker;
#  b) a phone model: CTC on the CMUdict pronunciations of the digit words (FSDD has no phone
#     labels), decoded with a 10-word lexicon (isolated-word recognition); word accuracy.
# Three speakers do not make a fourth, so by default every training pools more speakers (flite's
# digits, speechocean762's digits cut out of its sentences) and starts from the packaged en model.
#
#   bash recipes/fsdd/run.sh                              # default size
#   bash recipes/fsdd/run.sh --corpus /data/fsdd --test-speaker jackson
#   bash recipes/fsdd/run.sh --stage 3 --weights last trainer.epochs=40    # Hydra overrides
#   bash recipes/fsdd/run.sh --init "" --so762 "" --synth-digits 0          # FSDD alone, from scratch
#
# Stages: 0 corpus check, 1 prepare, 2 features, 3 train the frame-divergence classifiers,
# 4 train CTC, 5 decode the test speaker with the CTC model (greedy, lexicon), 6 accuracy table.
# FSDD has no dev split: `dev` is the test speaker, used for reporting only (no early stopping,
# the exported model is the last epoch's).
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=0
stop_stage=100
size=default                  # tiny (tests) | default | full
corpus=../shared/data/fsdd    # the FSDD folder (holding recordings/) or the recordings folder
test_speaker=george
weights="uniform last linear" # weightings of the frame divergence to train
data=data/fsdd
exp=exp/fsdd
jobs=$(nproc)                 # decoding worker processes
synth_digits=1200             # > 0: pool that many flite-made isolated digits (150 pseudo-speakers) into every training
so762=auto                    # a speechocean762 folder: pool its spoken digits (411 clips, 91 speakers; cut out by
                              # forced alignment, band-limited to 8 kHz) into every training; auto: ../shared/data's if present; "": none
init=en                       # start every training from this model (packaged name or model dir), its network and
                              # features (recipes/lib/model_overrides.py), at lr 5e-4; "": from scratch (model=small, 4 kHz filterbank)
pad_ms=50                     # near-silence added at both ends of every FSDD recording (recipes/lib/pad_audio.py); 0: none
trim_db="10 40"               # trim the training recordings (FSDD's and the pooled digits) as FSDD's are trimmed, each
                              # end T dB below the peak, T uniform in [10, 40], before padding them (recipes/lib/pad_audio.py)
phone_model=""                # another phone model dir (e.g. exp/speechocean762/ctc/model) decoded with the lexicon in stage 5
. recipes/lib/parse_options.sh
. recipes/lib/decode.sh

case "$size" in
  tiny)    prep_opts=(--max-speakers 3 --max-utts-per-speaker 10); model=small   # 30 train, 10 test recordings
           frame_opts=(trainer.epochs=2 trainer.warmup_steps=0 trainer.max_frames=500 trainer.lr=0.01)
           ctc_opts=("${frame_opts[@]}") ;;
  default) prep_opts=(); model=small   # small batches: 1,500 short recordings give few updates per epoch
           frame_opts=(trainer.epochs=25 trainer.warmup_steps=100 trainer.max_frames=2000)
           ctc_opts=(trainer.epochs=30 trainer.warmup_steps=100 trainer.max_frames=2000) ;;
  full)    prep_opts=(); model=bilstm
           frame_opts=(trainer.epochs=30 trainer.average_last=3); ctc_opts=(trainer.epochs=40 trainer.average_last=3) ;;
  *) echo "$0: --size must be tiny, default or full" >&2; exit 2 ;;
esac
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if [ "$so762" = auto ]; then
  so762=../shared/data/speechocean762; [ -d "$so762" ] || so762=""
fi
[ -z "$so762" ] || [ -d "$so762" ] || { echo "$0: speechocean762 folder $so762 not found (--so762 \"\" pools none)" >&2; exit 1; }
# 8 kHz audio is resampled to 16 kHz by load_audio: there is nothing above 4 kHz, so a model trained
# from scratch (--init "") has its mel filterbank stop there. patience=0: dev (= test) never selects a model.
# Per-speaker CMVN: every FSDD speaker has their own microphone and room, and with three training
# speakers global CMVN leaves the held-out one far off (18.8% accuracy, weights=uniform, against 51%
# with utterance CMVN after 22 epochs); a 0.4-s digit's own statistics mix the speaker with the
# word, so all of a speaker's recordings are normalised together (lucas held out, CTC + lexicon:
# 83.6% per utterance, 94.0% per speaker; docs/recipes/fsdd.md).
common=(data=fsdd data.dev=$data/test data.test=null data.cache_dir=$data/cache features.fmax=4000 features.cmvn=speaker)
# Starting from a real-speech phone model (the packaged en: 3x256, 30-ms frames, the full 0-8 kHz
# band, where FSDD leaves the top channels empty) carries what ~100 speechocean762 speakers taught
# it; a lower lr keeps it (0.0005: 65.0% on lucas after 25 epochs against 63.0% at the 0.002 default).
if [ -n "$init" ]; then
  init_opts=($("$PY" recipes/lib/model_overrides.py "$init")) || exit 1
  model=${init_opts[0]#model=}
  common+=("${init_opts[@]:1}" trainer.init_from=$init trainer.lr=0.0005)
fi
# the training corpora: FSDD's three speakers, plus the synthetic digits (all their splits: none is FSDD's test)
train_dirs=$data/train
[ "$synth_digits" -gt 0 ] && train_dirs+=",$data/synth_digits/train,$data/synth_digits/test"
[ -n "$so762" ] && train_dirs+=",$data/so762_digits"

# train EXP_DIR OVERRIDES...: a fresh run that replaces an earlier one in EXP_DIR (trainer.overwrite=true:
# re-running a stage is intended), unless trainer.resume=true continues it
train() {
  local dir=$1; shift
  "$PY" -m phonrec.cli.train "${common[@]}" "data.train=[$train_dirs]" model=$model trainer.patience=0 exp_dir=$dir \
    trainer.overwrite=true "$@" "${overrides[@]}"
}

if run_stage 0 "corpus $corpus"; then
  [ -d "$corpus" ] || { echo "$0: FSDD folder $corpus not found: pass --corpus DIR (github.com/Jakobovski/free-spoken-digit-dataset)" >&2; exit 1; }
fi

if run_stage 1 "prepare $corpus -> $data/{train,test} (test speaker $test_speaker), CMUdict digit phones and lexicon"; then
  if [ "$pad_ms" = 0 ] && [ -z "$trim_db" ]; then
    "$PY" recipes/lib/prepare.py fsdd "$corpus" $data --test-speaker "$test_speaker" "${prep_opts[@]}"
  else   # FSDD's recordings are trimmed to the word: pad them (lucas held out: 94.0% -> 96.6% at 50 ms); the
    # training speakers' are trimmed again first (lucas's are not trimmed at all; nicolas held out: 63.0 -> 68.6%)
    rm -rf $data/unpadded $data/train $data/test
    "$PY" recipes/lib/prepare.py fsdd "$corpus" $data/unpadded --test-speaker "$test_speaker" "${prep_opts[@]}"
    cp $data/unpadded/lexicon.txt $data/
    "$PY" recipes/lib/pad_audio.py $data/unpadded/train $data/train --ms "$pad_ms" ${trim_db:+--trim-db $trim_db}
    "$PY" recipes/lib/pad_audio.py $data/unpadded/test $data/test --ms "$pad_ms"
  fi
  # the pooled digits are made in $data/untrimmed, then trimmed and padded as FSDD's recordings (--trim-db)
  rm -rf $data/untrimmed $data/synth_digits $data/so762_digits
  pooled=$data; [ -n "$trim_db" ] && pooled=$data/untrimmed
  if [ "$synth_digits" -gt 0 ]; then   # "zero" ... "nine" said by the flite voices' pseudo-speakers
    printf '%s\n' zero one two three four five six seven eight nine > $data/digits.txt
    "$PY" -m phonrec.cli.synth $pooled/synth_digits --num-utts "$synth_digits" --text $data/digits.txt \
      --speakers-per-voice 30 --dev-fraction 0 --jobs "$jobs" --quiet
  fi
  if [ -n "$so762" ]; then   # every speechocean762 speaker (none is FSDD's), aligned with the packaged en model,
    "$PY" recipes/lib/prepare.py speechocean762 "$so762" $data/so762   # cut at 8 kHz as FSDD's recordings are
    "$PY" recipes/lib/word_clips.py $data/so762/train $data/so762/dev --lexicon $data/lexicon.txt \
      --words zero one two three four five six seven eight nine --sample-rate 8000 --out $pooled/so762_digits
  fi
  if [ -n "$trim_db" ]; then   # FSDD's trimming cuts weak onsets (a /t/ burst, an /f/): the pooled digits lose them too
    for dir in ${train_dirs//,/ }; do
      [ "$dir" = $data/train ] || "$PY" recipes/lib/pad_audio.py ${dir/#$data/$pooled} $dir --ms "$pad_ms" --trim-db $trim_db
    done
  fi
fi

if run_stage 2 "features"; then
  "$PY" -m phonrec.cli.train features "${common[@]}" "data.train=[$train_dirs]" exp_dir=$exp/features "${overrides[@]}"
fi

if run_stage 3 "sequence classification with the weighted frame divergence ($weights)"; then
  for w in $weights; do
    train $exp/frame_$w divergence=frame divergence.weights=$w "${frame_opts[@]}"
  done
fi

if run_stage 4 "train CTC on the CMUdict digit pronunciations"; then
  train $exp/ctc divergence=ctc "${ctc_opts[@]}"
fi

if run_stage 5 "decode the test speaker with the CTC model (greedy phones; 10-word lexicon)"; then
  lexicon=$data/lexicon.txt
  decode_grid $exp $data ctc test "greedy lexicon"
  if [ -n "$phone_model" ]; then   # its own features config: the full band (nothing above 4 kHz here)
    "$PY" -m phonrec.cli.decode model_dir=$phone_model data_dir=$data/test decoder=greedy \
      out_dir=$exp/external/decode-greedy-test jobs=$jobs >/dev/null
    "$PY" -m phonrec.cli.decode model_dir=$phone_model data_dir=$data/test decoder=lexicon decoder.lexicon=$lexicon \
      out_dir=$exp/external/decode-lexicon-test jobs=$jobs >/dev/null
  fi
fi

if run_stage 6 "accuracy table"; then
  "$PY" recipes/lib/accuracy_table.py --exp $exp --weights $weights --data $data/test --out $exp/results.md \
    ${phone_model:+--phone-model-label "phone model $phone_model"}
  log "models: $exp/frame_{$(echo $weights | tr ' ' ,)}/model $exp/ctc/model; table: $exp/results.md"
fi
