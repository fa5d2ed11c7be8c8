"""CTC blank penalty sweep: greedy PER on a data directory with the blank's log-probability
lowered by each penalty (icefall's ``--blank-penalty``), the network run once.

    .venv/bin/python bench/blank_penalty.py exp/speechocean762/ctc/model data/speechocean762/dev 0 0.5 1 2
"""

from __future__ import annotations

import argparse

import torch

from phonrec import Transcriber
from phonrec.audio import load_audio
from phonrec.data.datadir import DataDir
from phonrec.decode.greedy import greedy
from phonrec.metrics import per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("data_dir", help="a data directory with reference phones")
    ap.add_argument("penalties", nargs="*", type=float, default=[0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    args = ap.parse_args()
    torch.set_num_threads(1)
    tr = Transcriber.from_pretrained(args.model_dir)
    if tr.phone_set.blank_id is None:
        raise SystemExit(f"{args.model_dir}: not a CTC model (no blank)")
    data = DataDir.load(args.data_dir)
    if data.phones is None:
        raise SystemExit(f"{args.data_dir}: no reference phones")
    rate = tr.feature_config.sample_rate
    log_probs = {u: tr.log_probs_batch([load_audio(data.wavs[u], rate)])[0] for u in data.utts}  # (T, K) each
    symbols, blank = tr.phone_set.symbols, tr.phone_set.blank_id
    print("| blank penalty | PER % | sub | del | ins |\n|---|---|---|---|---|")
    for penalty in args.penalties:
        hyps = {}
        for utt, lp in log_probs.items():
            lowered = lp.clone()
            lowered[:, blank] -= penalty
            hyps[utt] = [symbols[s.phone] for s in greedy(lowered, blank=blank)]
        c = per({u: data.phones[u] for u in hyps}, hyps)
        print(f"| {penalty:g} | {100 * c.rate:.1f} | {c.substitutions} | {c.deletions} | {c.insertions} |")


if __name__ == "__main__":
    main()
