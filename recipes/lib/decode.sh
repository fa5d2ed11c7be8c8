# Shared decoding loop for recipes. Source it after recipes/lib/parse_options.sh, then:
#   decode_grid EXP DATA "MODELS" "SPLITS" "DECODERS"
# decodes EXP/MODEL/model on DATA/SPLIT with each decoder into EXP/MODEL/decode-DECODER-SPLIT
# (hyp.txt, spans.txt, words.txt, report.{txt,json}) with $jobs workers. The phone beam's bigram
# comes from DATA/train; the lexicon decoder reads $lexicon and, when the recipe sets $word_lm (a
# Kaldi text file or an ARPA model), searches with that word LM at $lm_weight and $word_penalty
# (default 1 and 0). Frame-level models (any model but
# `ctc*`) decode with a minimum phone duration of $min_duration_ms milliseconds (default 30; the
# decoder turns it into model frames): their posteriors have no blank, so without it every
# one-frame flicker becomes a phone.
decode_grid() {
  local exp=$1 data=$2 models=$3 splits=$4 decoders=$5 model split decoder
  for model in $models; do
    for split in $splits; do
      for decoder in $decoders; do
        local extra=()
        [ "$decoder" = beam ] && extra+=(decoder.train_data=$data/train)
        [ "$decoder" = lexicon ] && extra+=(decoder.lexicon=$lexicon)
        [ "$decoder" = lexicon ] && [ -n "${word_lm:-}" ] &&
          extra+=(decoder.lm=$word_lm decoder.lm_weight=${lm_weight:-1} decoder.word_penalty=${word_penalty:-0})
        case "$model" in ctc*) ;; *) extra+=(decoder.min_duration_ms=${min_duration_ms:-30}) ;; esac
        "$PY" -m phonrec.cli.decode model_dir=$exp/$model/model data_dir=$data/$split decoder=$decoder \
          out_dir=$exp/$model/decode-$decoder-$split jobs=$jobs "${extra[@]}" >/dev/null
      done
    done
  done
}

# record_defaults EXP DATA "MODELS": write into each EXP/MODEL/model the decoding defaults the
# recipes' tables favour, so that phonrec-transcribe and Transcriber decode as the recipe does:
# frame-level models the phone beam with the training phones' bigram and a $min_duration_ms
# minimum phone duration; CTC models greedy (their best phone decoder in the tables). Both carry
# the recipe's $lexicon for `--decoder lexicon`.
record_defaults() {
  local exp=$1 data=$2 models=$3 model
  for model in $models; do
    local opts=(--decoder greedy)
    case "$model" in ctc*) ;; *) opts=(--decoder beam --min-duration-ms ${min_duration_ms:-30}) ;; esac
    "$PY" -m phonrec.cli.transcribe $exp/$model/model --write-defaults "${opts[@]}" \
      --bigram-from $data/train --lexicon $lexicon
  done
}
