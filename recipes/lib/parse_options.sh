# Shared option parsing for recipes (Kaldi style). Source it after setting defaults:
#   stage=0; stop_stage=100; size=default
#   . recipes/lib/parse_options.sh
# Options --name value (or --name=value) set the variable `name` (dashes become underscores),
# which must already exist; everything else is collected in "${overrides[@]}" and passed to
# phonrec-train as Hydra overrides.
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "usage: $0 [--stage N] [--stop-stage M] [--OPTION VALUE ...] [hydra.overrides=...]"; exit 0 ;;
    --*=*) name=${1%%=*}; value=${1#*=} ;;
    --*) [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 2; }   # "" is a value
         name=$1; value=$2; shift ;;
    *) overrides+=("$1"); shift; continue ;;
  esac
  var=${name#--}; var=${var//-/_}
  if ! declare -p "$var" >/dev/null 2>&1; then echo "$0: unknown option $name" >&2; exit 2; fi
  printf -v "$var" '%s' "$value"
  shift
done
log() { echo "[$(date +%H:%M:%S)] $*"; }
# run_stage N "description": true when stage N is within --stage..--stop-stage
run_stage() { [ "$1" -ge "$stage" ] && [ "$1" -le "$stop_stage" ] && log "stage $1: $2"; }
