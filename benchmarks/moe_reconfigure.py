"""Runtime partial reconfiguration: how long ``ConsolidatedMoE.activate`` takes, per mode.

For each zoo (``mixtral-tiny``, ``switch-tiny``; built on first use), the first two variants are
consolidated with half of the expert slots shared and activation alternates between them:

* ``swap``: every tenant's non-expert set is resident; activation re-points parameters.
* ``copy``: one live non-expert set; activation copies the tenant's set in from host memory
  (pinned when CUDA is available), as the serving paper does. Its bytes/s is printed with the
  peer it should approach: one ``Tensor.copy_`` of the same number of bytes in one piece.

Times are medians over many activations after a warm-up, on one CPU thread unless CUDA is used.

Run: ``python benchmarks/moe_reconfigure.py`` (``--repeats N``, ``--device cuda``).
"""

from __future__ import annotations

import os

# One intra-op thread: tiny copies are faster without a thread pool, and runs compare fairly.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import statistics
import time

import torch

from moelab import load_moe
from moelab.consolidation import plan_consolidation
from moelab.reconfigure import ConsolidatedMoE
from moelab.zoo import load_zoo


def activation_times(cmoe: ConsolidatedMoE, tenants: list[str], repeats: int) -> list[float]:
    """Seconds of each activation, alternating tenants so every call changes the tenant."""
    for tenant in tenants:  # warm-up
        cmoe.activate(tenant)
    return [cmoe.activate(tenants[i % len(tenants)]) for i in range(repeats)]


def peer_copy_seconds(n_bytes: int, device: torch.device, repeats: int) -> float:
    """Median time of one copy of ``n_bytes`` from host memory, in one piece."""
    pinned = torch.cuda.is_available()
    src = torch.empty(n_bytes, dtype=torch.uint8)
    src = src.pin_memory() if pinned else src
    dst = torch.empty(n_bytes, dtype=torch.uint8, device=device)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        dst.copy_(src, non_blocking=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def bench(zoo_name: str, device: torch.device, repeats: int) -> None:
    zoo = load_zoo(zoo_name)
    tenants = list(zoo.tasks[:2])
    models = {t: load_moe(zoo.load_model(t)) for t in tenants}
    n_slots = len(models[tenants[0]].expert_slots())
    plan = plan_consolidation(models, n_slots // 2, unit="slots")
    swap = ConsolidatedMoE.from_plan(plan, device=device, mode="swap")
    copy = ConsolidatedMoE.from_plan(plan, device=device, mode="copy")
    swap_s = statistics.median(activation_times(swap, tenants, repeats))
    copy_s = statistics.median(activation_times(copy, tenants, repeats))
    moved = copy.last_copy_bytes
    peer_s = peer_copy_seconds(moved, device, repeats)
    n_params = len(list(swap.model.parameters()))
    print(
        f"{zoo_name} ({device}, {len(tenants)} tenants, {plan.n_shared}/{n_slots} slots shared, "
        f"{n_params} live parameter tensors)"
    )
    print(
        f"  swap activate: {swap_s * 1e6:9.1f} us   (re-points parameters, 0 bytes copied)"
        f"   under 1 ms: {swap_s < 1e-3}"
    )
    print(
        f"  copy activate: {copy_s * 1e6:9.1f} us   {moved:,} bytes -> {moved / copy_s / 1e9:.3f} GB/s"
    )
    print(
        f"  peer: one Tensor.copy_ of {moved:,} bytes: {peer_s * 1e6:9.1f} us -> "
        f"{moved / peer_s / 1e9:.3f} GB/s"
    )
    print(
        f"  ratios: copy / swap = {copy_s / swap_s:.1f}x, copy / one-piece copy = "
        f"{copy_s / peer_s:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="activations per mode")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--zoos", nargs="+", default=["mixtral-tiny", "switch-tiny"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.zoos:
        bench(name, torch.device(args.device), args.repeats)


if __name__ == "__main__":
    main()
