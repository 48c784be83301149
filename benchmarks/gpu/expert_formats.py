"""One token's two routed experts at Mixtral-8x7B shape, in every stored format.

The mixed-precision paper stores quantized experts with bitsandbytes (``load_in_4bit``) and
finds a 4-bit expert slower than a bf16 one at batch 1; widths with no fast kernel (8, 3 and 2
bits here) can only be read back to bf16 before each use. This times, for each expert matrix
(gate_up ``[28672, 4096]``, down ``[4096, 14336]``) of 8 experts, one decode token's top-2
assignments:

* ``bnb_nf4``: ``bitsandbytes.matmul_4bit`` once per assignment, as ``Linear4bit`` runs a
  quantized expert (NF4, blocks of 64, no double quantization: transformers' defaults);
* ``routed_int4``: :func:`moelab.experts.routed_linear_int4`, both assignments in one launch
  (affine 4 bits, group 64);
* ``routed_bf16``: :func:`moelab.experts.routed_linear`, the same in bf16;
* ``f_linear_bf16``: one ``F.linear`` per assignment, the plain bf16 peer;
* ``dequantized_8bit``, ``_3bit``, ``_2bit``: per assignment, the expert's
  :class:`moelab.quant.QuantizedMatrix` (``rtn``, group 64; codes unpacked, a byte each)
  read back with :meth:`~moelab.quant.QuantizedMatrix.dequantize`, then ``F.linear``: what a
  width without a kernel costs a use.

Each is timed with CUDA events over ``--repeats`` calls after a warm-up, called from Python
(``us``: launches included, as an eager decode step pays them) and replayed as a captured CUDA
graph (``graph_us``: the GPU's time, as a graph-captured decode step pays it); its output is
compared with the bf16 product of the weights it stores (bitsandbytes' own dequantization
for ``bnb_nf4``). The JSON is written atomically beside this script.

Run on a CUDA machine with bitsandbytes installed: ``python benchmarks/gpu/expert_formats.py``
(``--out``, ``--repeats``); ``--cpu`` runs the same code on the CPU at a small shape.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from labcore.atomic import atomic_write_text
from moelab.experts import quantize_int4, routed_linear, routed_linear_int4
from moelab.quant import quantize_matrix

OUT = Path(__file__).with_suffix(".json")
MIXTRAL_SHAPES = {"gate_up": (2 * 14336, 4096), "down": (4096, 14336)}
SMALL_SHAPES = {"gate_up": (256, 128), "down": (128, 128)}
EXPERTS, ASSIGNMENTS, GROUP = 8, 2, 64
#: Widths with no kernel: read back to bf16 before each use.
WITHOUT_KERNEL = (8, 3, 2)
PathFn = Callable[[], torch.Tensor]


def time_us(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Mean microseconds a call, CUDA events on a GPU, the wall clock on a CPU."""
    for _ in range(3):
        fn()
    if device.type != "cuda":
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - start) / repeats * 1e6
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    begin.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    return begin.elapsed_time(end) / repeats * 1e3


def graph_us(fn: Callable[[], Any], device: torch.device, repeats: int) -> float | str:
    """Mean microseconds a replay of ``fn`` captured as a CUDA graph (the GPU's time alone, as
    a decode step replays it), or why it could not be captured."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            fn()
    except RuntimeError as err:
        return f"not capturable: {err}".splitlines()[0]
    return time_us(graph.replay, device, repeats)


def relative_error(out: torch.Tensor, reference: torch.Tensor) -> float:
    return float((out.float() - reference.float()).norm() / reference.float().norm())


def bitsandbytes_path(
    weight: torch.Tensor, x: torch.Tensor, chosen: list[int]
) -> tuple[PathFn, torch.Tensor, int]:
    """NF4 experts through ``matmul_4bit``: the call, the weights it stores, bytes an expert."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnb_functional

    nf4 = [
        bnb_functional.quantize_4bit(weight[e], blocksize=GROUP, quant_type="nf4") for e in chosen
    ]

    def call() -> torch.Tensor:
        return torch.cat(
            [
                bnb.matmul_4bit(x[i : i + 1], packed.t(), quant_state=state)
                for i, (packed, state) in enumerate(nf4)
            ]
        )

    stored = torch.stack([bnb_functional.dequantize_4bit(p, s) for p, s in nf4])
    packed, state = nf4[0]
    return call, stored, packed.nbytes + state.absmax.nbytes + state.code.nbytes


def dequantized_path(
    weight: torch.Tensor, x: torch.Tensor, chosen: list[int], bits: int
) -> tuple[PathFn, torch.Tensor, int]:
    """Experts at ``bits`` with no kernel, each read back to bf16, then ``F.linear``: the
    call, the weights it stores, the bytes an expert takes packed."""
    matrices = [quantize_matrix(weight[e], bits, GROUP) for e in chosen]

    def call() -> torch.Tensor:
        return torch.cat(
            [
                torch.nn.functional.linear(x[i : i + 1], q.dequantize())
                for i, q in enumerate(matrices)
            ]
        )

    return call, torch.stack([q.dequantize() for q in matrices]), matrices[0].nbytes


def one_matrix(n: int, k: int, device: torch.device, repeats: int) -> dict[str, Any]:
    """Every path on ``EXPERTS`` random ``[n, k]`` bf16 experts, one token's assignments."""
    generator = torch.Generator(device=device).manual_seed(0)
    weight = torch.randn(EXPERTS, n, k, device=device, dtype=torch.bfloat16, generator=generator)
    weight /= k**0.5
    x = torch.randn(ASSIGNMENTS, k, device=device, dtype=torch.bfloat16, generator=generator)
    ids = torch.randperm(EXPERTS, device=device, generator=generator)[:ASSIGNMENTS]
    chosen = ids.tolist()  # read once: a Linear4bit per expert knows which one it is
    int4 = quantize_int4(weight, GROUP)
    nf4_call, nf4_stored, nf4_bytes = bitsandbytes_path(weight, x, chosen)
    paths: dict[str, tuple[PathFn, torch.Tensor]] = {
        "bnb_nf4": (nf4_call, nf4_stored),
        "routed_int4": (
            lambda: routed_linear_int4(x, int4.packed, int4.scale, int4.zero, ids, GROUP),
            torch.stack([int4.dequantize(e) for e in chosen]),
        ),
        "routed_bf16": (lambda: routed_linear(x, weight, ids), weight[ids]),
        "f_linear_bf16": (
            lambda: torch.cat(
                [torch.nn.functional.linear(x[i : i + 1], weight[e]) for i, e in enumerate(chosen)]
            ),
            weight[ids],
        ),
    }
    row: dict[str, Any] = {}
    for bits in WITHOUT_KERNEL:
        call, stored, nbytes = dequantized_path(weight, x, chosen, bits)
        paths[f"dequantized_{bits}bit"] = (call, stored)
        row[f"{bits}bit_bytes_per_expert"] = nbytes
    with torch.no_grad():
        for name, (fn, stored) in paths.items():
            reference = torch.einsum("snk,sk->sn", stored.float(), x.float())
            row[name] = {
                "us": time_us(fn, device, repeats),
                "relative_error": relative_error(fn(), reference),
            }
            if device.type == "cuda":
                row[name]["graph_us"] = graph_us(fn, device, repeats)
    row["bnb_nf4_bytes_per_expert"] = nf4_bytes
    row["routed_int4_bytes_per_expert"] = int4.nbytes // EXPERTS
    row["bf16_bytes_per_expert"] = n * k * 2
    return row


def shown(value: float | str | None) -> str:
    return f"{value:.0f} us" if isinstance(value, float) else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--cpu", action="store_true", help="a small shape on the CPU")
    args = parser.parse_args()
    device = torch.device("cpu" if args.cpu else "cuda")
    import bitsandbytes

    results: dict[str, Any] = {
        "device": "cpu (small shape)" if args.cpu else torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "bitsandbytes": bitsandbytes.__version__,
        "experts": EXPERTS,
        "assignments": ASSIGNMENTS,
        "group_size": GROUP,
        "matrices": {},
    }
    for name, (n, k) in (SMALL_SHAPES if args.cpu else MIXTRAL_SHAPES).items():
        row = one_matrix(n, k, device, args.repeats)
        results["matrices"][name] = {"shape": [n, k], **row}
        print(
            f"{name} [{n}, {k}] x{ASSIGNMENTS}: "
            + ", ".join(
                f"{path} {row[path]['us']:.0f} us, graph {shown(row[path].get('graph_us'))}"
                f" (error {row[path]['relative_error']:.1e})"
                for path in row
                if isinstance(row[path], dict)
            ),
            flush=True,
        )
    atomic_write_text(args.out, json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
