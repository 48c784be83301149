"""Peak memory of expert similarity: lazy (from checkpoint folders) against eager (loaded models).

Two synthetic Mixtral-family checkpoints are written into a temporary folder (random float32
weights; hidden 1024, expert width 3584, 8 experts per layer, 5 layers: about 1.85 GB each,
95 % of it experts). Model ``b`` is model ``a`` plus small noise, as a fine-tune would be.
The shards are written directly in the original per-expert layout (``block_sparse_moe.experts.
{j}.w1|w2|w3``), one layer at a time, so creating them never holds a whole model; their
tensor names are checked against what ``save_pretrained`` writes for a tiny model of the same
depth. The writer and the memory readings are shared with the other memory benchmarks
(``moe_checkpoints.py``).

Then two child processes, one after the other so their peaks do not mix, compute the ``l2``
table for every slot:

* eager: ``load_moe`` both folders, then ``expert_similarity`` on the loaded models;
* lazy: ``expert_similarity`` on the two folders (``LazyCheckpoint.read_expert``, one slot at
  a time).

Each child reports its own peak resident set size (``VmHWM`` of ``/proc/self/status`` on
Linux, ``getrusage(RUSAGE_SELF).ru_maxrss`` elsewhere; see :func:`peak_rss_bytes`) and its
time; the parent checks that the two tables are equal bit for bit and prints the ratio
lazy / eager (target below 0.25). The temporary files are removed at the end.

Run: ``python benchmarks/moe_similarity_lazy.py`` (``--layers N`` to change the size,
``--dir PATH`` to put the checkpoints elsewhere than the system temp folder).
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from moe_checkpoints import (
    EXPERTS,
    HIDDEN,
    INTERMEDIATE,
    check_names_match_save_pretrained,
    folder_bytes,
    peak_rss_bytes,
    rss_bytes,
    write_pair,
)


def child(mode: str, folder_a: str, folder_b: str, out: str) -> None:
    """Compute the l2 table in this process and report peak memory and time as JSON."""
    from moelab import load_moe
    from moelab.similarity import expert_similarity

    baseline = rss_bytes()
    start = time.perf_counter()
    if mode == "eager":
        models = {
            "a": load_moe(folder_a, tokenizer=False),
            "b": load_moe(folder_b, tokenizer=False),
        }
    else:
        models = {"a": folder_a, "b": folder_b}
    table = expert_similarity(models, "l2", progress=False)
    seconds = time.perf_counter() - start
    with open(out, "wb") as handle:
        pickle.dump(table, handle)
    print(
        json.dumps(
            {
                "mode": mode,
                "peak_rss": peak_rss_bytes(),
                "after_imports_rss": baseline,
                "seconds": seconds,
                "rows": len(table),
            }
        )
    )


def run_child(mode: str, folder_a: Path, folder_b: Path, out: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(folder_a), str(folder_b), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--layers", type=int, default=5, help="decoder layers (5: about 1.85 GB per checkpoint)"
    )
    parser.add_argument("--dir", default=None, help="parent folder of the temporary checkpoints")
    parser.add_argument(
        "--child", nargs=4, metavar=("MODE", "A", "B", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    import pandas as pd

    check_names_match_save_pretrained(args.layers)
    with tempfile.TemporaryDirectory(prefix="moe-similarity-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        folder_a, folder_b = root / "a", root / "b"
        start = time.perf_counter()
        write_pair(folder_a, folder_b, args.layers)
        size = folder_bytes(folder_a)
        expert_mb = 3 * HIDDEN * INTERMEDIATE * 4 / 1e6
        print(
            f"two Mixtral-family checkpoints: {args.layers} layers x {EXPERTS} experts, "
            f"{size / 1e9:.2f} GB each (one expert {expert_mb:.0f} MB), written in "
            f"{time.perf_counter() - start:.1f} s"
        )
        results = {
            mode: run_child(mode, folder_a, folder_b, root / f"{mode}.pkl")
            for mode in ("eager", "lazy")
        }
        tables = {mode: pd.read_pickle(root / f"{mode}.pkl") for mode in results}
        pd.testing.assert_frame_equal(tables["lazy"], tables["eager"], check_exact=True)
        print(
            f"l2 tables equal bit for bit ({results['lazy']['rows']} slots); "
            f"mean l2 {tables['lazy']['value'].mean():.3f}"
        )
        print(f"{'mode':6s} {'peak RSS GB':>12s} {'after imports GB':>17s} {'time s':>8s}")
        for mode, r in results.items():
            peak, base = r["peak_rss"] / 1e9, r["after_imports_rss"] / 1e9
            print(f"{mode:6s} {peak:12.2f} {base:17.2f} {r['seconds']:8.1f}")
        ratio = results["lazy"]["peak_rss"] / results["eager"]["peak_rss"]
        verdict = "meets" if ratio < 0.25 else "MISSES"
        print(
            f"peak RSS lazy / eager = {ratio:.3f} ({verdict} the target < 0.25); "
            f"time lazy / eager = {results['lazy']['seconds'] / results['eager']['seconds']:.2f}"
        )
    print("temporary checkpoints removed")


if __name__ == "__main__":
    main()
