"""The bitsandbytes backends: bitsandbytes' own 4-bit formats, bytes, and where they are refused.

One test needs CUDA (``python -m pytest -m gpu tests/moelab/test_quant_bitsandbytes.py``): the
device quantizes as the CPU does, and ``fake_quantize`` writes the device's values.
"""

from __future__ import annotations

import sys

import pytest
import torch

from moelab.errors import MissingExtraError
from moelab.experts import quantize_experts, quantize_int4
from moelab.families import get_family
from moelab.quant import (
    QuantBackend,
    available_backends,
    expert_bytes,
    fake_quantize,
    get_backend,
    quantize_matrix,
    sweep_precision,
)

BNB = ["bnb-nf4", "bnb-fp4"]


def matrix(seed: int = 0, rows: int = 64, cols: int = 256) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))


def wide_model(tiny_model, seed: int = 0):
    """A tiny Mixtral whose matrices have 64 input columns (bitsandbytes' blocks are >= 32)."""
    return tiny_model("mixtral", seed, hidden_size=64, intermediate_size=64)


def test_the_bitsandbytes_backends_are_registered_as_4_bit_codebooks():
    assert {"rtn", "hqq", *BNB} <= set(available_backends())
    for name in BNB:
        spec = get_backend(name)
        assert spec.bits == (4,) and not spec.affine
    assert get_backend("rtn").affine and get_backend("hqq").affine


@pytest.mark.parametrize("name", BNB)
@pytest.mark.parametrize("group_size", [32, 64, 256])
def test_codes_read_back_as_bitsandbytes_dequantizes_them(name, group_size):
    functional = pytest.importorskip("bitsandbytes.functional")
    w = matrix(1)
    q = quantize_matrix(w, 4, group_size, name)
    packed, state = functional.quantize_4bit(w, blocksize=group_size, quant_type=name[4:])
    assert torch.equal(q.dequantize(), functional.dequantize_4bit(packed, state))
    assert q.backend == name and q.zero is None and int(q.codes.max()) <= 15
    # Bytes as bitsandbytes stores them: packed codes, a float32 absolute maximum a block, and
    # the 16 levels.
    stored = packed.numel() * packed.element_size() + state.absmax.numel() * 4 + 16 * 4
    assert q.nbytes == stored == get_backend(name).matrix_bytes(64, 256, 4, group_size, 4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_weights_read_back_in_their_dtype_as_bitsandbytes_does(dtype):
    functional = pytest.importorskip("bitsandbytes.functional")
    w = matrix(3).to(dtype)
    q = quantize_matrix(w, 4, 64, "bnb-nf4")
    packed, state = functional.quantize_4bit(w.float(), blocksize=64, quant_type="nf4")
    assert q.dequantize().dtype == dtype and q.scale.dtype == torch.float32
    assert torch.equal(q.dequantize(), functional.dequantize_4bit(packed, state).to(dtype))


def test_nf4_loses_less_than_fp4_on_normal_weights():
    pytest.importorskip("bitsandbytes")
    w = matrix(2)
    errors = {n: (quantize_matrix(w, 4, 64, n).dequantize() - w).pow(2).mean() for n in BNB}
    assert errors["bnb-nf4"] < errors["bnb-fp4"]


def test_bitsandbytes_bad_input_is_refused_with_the_fix():
    w = matrix()
    with pytest.raises(ValueError, match="stores 4 bits, not 3; for 3 bits use one of rtn, hqq$"):
        quantize_matrix(w, 3, 64, "bnb-nf4")
    with pytest.raises(
        ValueError, match=r"'bnb-fp4' backend takes group sizes \(32, 64, .* not 16"
    ):
        quantize_matrix(w, 4, 16, "bnb-fp4")
    with pytest.raises(
        ValueError, match=r"QuantBackend.bits must be among \(2, 3, 4, 8\), got \(5,\)"
    ):
        QuantBackend("five", lambda w, b, g: (w, w, w), bits=(5,))


def test_bitsandbytes_without_its_extra_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # its import raises ImportError
    monkeypatch.setitem(sys.modules, "bitsandbytes.functional", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'moe-sr-lab\[quant\]'"):
        quantize_matrix(matrix(), 4, 64, "bnb-fp4")


def test_codebook_experts_are_refused_by_the_routed_kernel_and_leave_the_model(tiny_model):
    model = wide_model(tiny_model)
    weight = model.model.layers[0].mlp.experts.gate_up_proj
    with pytest.raises(ValueError, match="codebook format, which the routed 4-bit kernel does not"):
        quantize_experts(model, group_size=32, backend="bnb-nf4")
    assert model.model.layers[0].mlp.experts.gate_up_proj is weight
    with pytest.raises(ValueError, match=r"use an affine backend \(rtn, hqq"):
        quantize_int4(weight.detach(), group_size=32, backend="bnb-fp4")


def test_fake_quantization_and_expert_bytes_with_bitsandbytes(tiny_model):
    pytest.importorskip("bitsandbytes")
    model = wide_model(tiny_model, 1)
    family = get_family("mixtral")
    slot = family.expert_slots(model.config)[2]
    before = {m: w.clone() for m, w in family.get_expert(model, slot).items()}
    fake_quantize(model, [slot], bits=4, group_size=32, backend="bnb-nf4")
    quantized = {m: quantize_matrix(w, 4, 32, "bnb-nf4") for m, w in before.items()}
    for m, w in family.get_expert(model, slot).items():
        assert torch.equal(w, quantized[m].dequantize()), m
    shapes = {m: tuple(t.shape) for m, t in before.items()}
    stored = sum(q.nbytes for q in quantized.values())
    assert expert_bytes(shapes, 4, 32, 4, "bnb-nf4") == stored
    assert expert_bytes(shapes, 4, 32, 2, "bnb-nf4") == stored  # absolute maxima: float32 always
    assert expert_bytes(shapes, 4, 32, 4, "rtn") > stored  # a float32 scale and zero a group


def test_a_sweep_with_bitsandbytes_counts_its_bytes_and_refuses_other_widths(tiny_model, tmp_path):
    pytest.importorskip("bitsandbytes")
    folder = tmp_path / "wide"
    model = wide_model(tiny_model, 3)
    model.save_pretrained(folder)
    ids = torch.randint(1, 60, (192,), generator=torch.Generator().manual_seed(0)).tolist()
    kwargs = dict(
        calibration_ids=ids[:64], eval_ids=ids[64:], chunk_len=32, group_size=32, progress=False
    )
    out = tmp_path / "sweep.csv"
    with pytest.raises(ValueError, match="stores 4 bits, not 2"):
        sweep_precision(folder, out, bits=[4, 2], backend="bnb-nf4", **kwargs)
    with pytest.raises(ValueError, match="takes group sizes .* not 16"):
        sweep_precision(folder, out, backend="bnb-nf4", **{**kwargs, "group_size": 16})
    assert not out.exists()
    table = sweep_precision(
        folder, out, policies=["layer"], n_quantized=[3, 8], bits=[4], backend="bnb-nf4", **kwargs
    )
    family = get_family("mixtral")
    slots = family.expert_slots(model.config)
    tensors = family.get_expert(model, slots[0]).values()
    quantized = sum(quantize_matrix(w, 4, 32, "bnb-nf4").nbytes for w in tensors)
    full = sum(w.numel() * w.element_size() for w in tensors)
    # Expert slots alike in shape: n of them as bitsandbytes stores them, the rest as stored.
    assert len(slots) == 8 and table["expert_bytes"].tolist() == [
        3 * quantized + 5 * full,
        8 * quantized,
    ]
    assert (
        table["backend"].tolist() == ["bnb-nf4"] * 2 and (table["perplexity_increase"] != 0).all()
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bitsandbytes_quantizes_on_the_device_as_on_the_cpu(tiny_model):
    pytest.importorskip("bitsandbytes")
    w = matrix(4).to(torch.bfloat16)
    on_cpu = quantize_matrix(w, 4, 64, "bnb-nf4")
    on_gpu = quantize_matrix(w.cuda(), 4, 64, "bnb-nf4")
    assert torch.equal(on_gpu.codes.cpu(), on_cpu.codes)
    assert torch.equal(on_gpu.scale.cpu(), on_cpu.scale)
    back = on_gpu.dequantize()
    assert back.device.type == "cuda" and back.dtype == torch.bfloat16
    assert torch.equal(back.cpu(), on_cpu.dequantize())
    model = wide_model(tiny_model, 4).to("cuda", torch.bfloat16)
    family = get_family("mixtral")
    slots = family.expert_slots(model.config)[:2]
    before = {s: {m: w.clone() for m, w in family.get_expert(model, s).items()} for s in slots}
    fake_quantize(model, slots, bits=4, group_size=32, backend="bnb-fp4")
    for s in slots:
        for m, w in family.get_expert(model, s).items():
            expected = quantize_matrix(before[s][m], 4, 32, "bnb-fp4").dequantize()
            assert w.device.type == "cuda" and torch.equal(w, expected), (s, m)
            # bitsandbytes' CUDA and CPU kernels may round a weight on a level boundary apart.
            on_cpu = quantize_matrix(before[s][m].cpu(), 4, 32, "bnb-fp4").dequantize()
            apart = (w.cpu() != on_cpu).float().mean().item()
            assert apart < 0.01, f"{s} {m}: {apart:.2%} of the weights differ from the CPU's"
