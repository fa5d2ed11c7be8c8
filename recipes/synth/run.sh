#!/usr/bin/env bash
# The built-in synthetic corpus, end to end: corpus -> features -> aligned and CTC models ->
# greedy / phone-beam / lexicon decoding of dev and test (an unseen voice) -> results table.
#
#   bash recipes/synth/run.sh                       # default size (well under 20 minutes on 2 cores)
#   bash recipes/synth/run.sh --size full           # the serious model
#   bash recipes/synth/run.sh --stage 3 model.hidden=384 trainer.epochs=12   # Hydra overrides
#   bash recipes/synth/run.sh --init ""             # the CTC model from the aligned one (no real speech)
# Re-running a training stage replaces its model (trainer.overwrite=true); trainer.resume=true continues it.
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=0
stop_stage=100
size=default          # default | full | tiny (tests)
data=data/synth       # corpus output
exp=exp/synth         # models, decodes, plots
jobs=$(nproc)
distractors=1000      # extra CMUdict words in the decoding lexicon
lm_weight=0.15        # the lexicon search's word bigram (estimated on the training sentences) at this weight; 0: none
word_penalty=-2       # added to the score of each word in the lexicon search (negative: fewer words)
init=en               # start the CTC model from this one (packaged name or model dir), in its network and
                      # features (recipes/lib/model_overrides.py); "": from the aligned model of stage 3
. recipes/lib/parse_options.sh
. recipes/lib/decode.sh

ctc_opts=()           # CTC training options, when not the aligned model's
model_opts=()         # model overrides of the size
case "$size" in
  tiny)    num_utts=60;   model=small;  train_opts=(trainer.epochs=6 trainer.warmup_steps=0)
           init_ctc_opts=(trainer.epochs=2 trainer.warmup_steps=0) ;;
  default) num_utts=1500; model=bilstm; train_opts=(trainer.epochs=15 trainer.max_frames=3000 trainer.lr=0.002
                                                    trainer.warmup_steps=100 trainer.average_last=3)   # 3x256, 10-ms frames
           model_opts=(model.conv_channels=32 model.proj=256)   # a 2-layer conv front end (docs/recipes/synth.md)
           init_ctc_opts=(trainer.epochs=6 trainer.max_frames=3000 trainer.warmup_steps=50 trainer.average_last=3) ;;
  full)    num_utts=3000; model=bilstm; model_opts=(model.stack=3)   # 3x256, 30-ms model frames
           train_opts=(trainer.epochs=10 trainer.average_last=3); ctc_opts=(trainer.epochs=6 trainer.average_last=3)
           init_ctc_opts=("${ctc_opts[@]}") ;;
  *) echo "$0: --size must be tiny, default or full" >&2; exit 2 ;;
esac
[ ${#ctc_opts[@]} -gt 0 ] || ctc_opts=("${train_opts[@]}")
# sizes other than default write beside it unless --data/--exp say otherwise
[ "$size" != default ] && [ "$data" = data/synth ] && data=data/synth_$size
[ "$size" != default ] && [ "$exp" = exp/synth ] && exp=exp/synth_$size
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
# each pseudo-speaker's features normalised by their own statistics (Kaldi's per-speaker CMVN)
common=(data=synth data.train=$data/train data.dev=$data/dev data.test=$data/test
        data.cache_dir=$data/cache features.cmvn=speaker model=$model "${model_opts[@]}")

if run_stage 0 "set-up check"; then
  command -v flite >/dev/null || { echo "flite is missing: run bash tools/setup.sh" >&2; exit 1; }
  "$PY" -c "import phonrec.cli.train, phonrec.cli.synth" || { echo "phonrec is not installed: run bash tools/setup.sh" >&2; exit 1; }
fi

if run_stage 1 "synthetic corpus ($num_utts utterances) -> $data"; then
  "$PY" -m phonrec.cli.synth "$data" --num-utts "$num_utts" --jobs "$jobs"
fi

if run_stage 2 "features"; then
  "$PY" -m phonrec.cli.train features "${common[@]}" exp_dir=$exp/features "${overrides[@]}"
fi

if run_stage 3 "train a frame-level model (aligned divergence, flite's frame labels)"; then
  "$PY" -m phonrec.cli.train "${common[@]}" divergence=aligned exp_dir=$exp/aligned trainer.overwrite=true "${train_opts[@]}" "${overrides[@]}"
fi

# The CTC model starts from the packaged en model (its network, features and per-speaker CMVN; lr
# 5e-4): the real speakers it heard carry over to the unseen voice (docs/recipes/synth.md). --init "":
# from the aligned model of stage 3, which skips CTC's all-blank plateau.
if [ -n "$init" ]; then
  init_opts=($("$PY" recipes/lib/model_overrides.py "$init")) || exit 1
  ctc_common=(data=synth data.train=$data/train data.dev=$data/dev data.test=$data/test data.cache_dir=$data/cache_init
              "${init_opts[@]}" features.cmvn=speaker trainer.init_from=$init trainer.lr=0.0005 "${init_ctc_opts[@]}")
else
  ctc_common=("${common[@]}" trainer.init_from=$exp/aligned/model "${ctc_opts[@]}")
fi
if run_stage 4 "train a CTC model, started from ${init:-the aligned model}"; then
  "$PY" -m phonrec.cli.train "${ctc_common[@]}" divergence=ctc exp_dir=$exp/ctc trainer.overwrite=true "${overrides[@]}"
fi

if run_stage 5 "decode dev and test (greedy, phone beam, lexicon)"; then
  "$PY" recipes/lib/make_lexicon.py --corpus-lexicon $data/lexicon.txt --distractors $distractors --out $exp/lexicon.txt
  lexicon=$exp/lexicon.txt
  # the word bigram of the training sentences; weights chosen on dev (docs/recipes/synth.md)
  [ "$lm_weight" = 0 ] || word_lm=$data/train/text
  decode_grid $exp $data "aligned ctc" "dev test" "greedy beam lexicon"
  record_defaults $exp $data "aligned ctc"
fi

if run_stage 6 "score, results table and plots"; then
  "$PY" recipes/lib/results_table.py --exp $exp --models aligned ctc --out $exp/results.md
  "$PY" -m phonrec.cli.plot recipe --exp $exp --data $data/test || echo "(plots failed; see above)"
  cat $exp/results.md
  log "models: $exp/aligned/model $exp/ctc/model; plots: $exp/plots/"
fi
