"""Equivalence maths on constructed inputs (exact expected values)."""

import math

import numpy as np
import pytest
import torch

from vda.bench.agreement import abs_rel, compare, delta1, max_abs_err, rel_l2


def test_identical_maps_agree_perfectly():
    ref = torch.rand(2, 3, 4) + 0.5
    agreement = compare(ref.clone(), ref)
    assert agreement.max_abs_err == 0.0
    assert agreement.rel_l2 == 0.0
    assert agreement.absrel == 0.0
    assert agreement.delta1 == 1.0


def test_constructed_errors():
    ref = torch.tensor([1.0, 2.0, 4.0, 8.0])
    pred = torch.tensor([1.0, 2.0, 4.0, 10.0])
    assert max_abs_err(pred, ref) == 2.0
    assert rel_l2(pred, ref) == pytest.approx(2.0 / math.sqrt(85.0), rel=1e-12)
    assert abs_rel(pred, ref) == pytest.approx(0.25 / 4, rel=1e-12)
    # 10 / 8 = 1.25 exactly is not below the threshold: 3 of 4 pixels are within it
    assert delta1(pred, ref) == 0.75


def test_delta1_is_symmetric_in_the_ratio():
    ref = torch.tensor([2.0, 2.0, 2.0, 2.0])
    pred = torch.tensor([1.0, 1.7, 2.4, 3.0])  # ratios 2.0, 1.176, 1.2, 1.5
    assert delta1(pred, ref) == 0.5


def test_depth_metrics_use_pixels_where_reference_is_positive():
    ref = np.array([0.0, 1.0, 2.0])
    pred = np.array([5.0, 0.0, 2.0])
    assert max_abs_err(pred, ref) == 5.0
    assert rel_l2(pred, ref) == pytest.approx(math.sqrt(26.0) / math.sqrt(5.0), rel=1e-12)
    assert abs_rel(pred, ref) == 0.5  # (|0 - 1| / 1 + 0) / 2
    assert delta1(pred, ref) == 0.5  # a zero prediction is a miss, 2 vs 2 a hit


def test_all_zero_reference():
    zeros = torch.zeros(4)
    assert math.isnan(abs_rel(zeros + 1, zeros))
    assert math.isnan(delta1(zeros + 1, zeros))
    assert rel_l2(zeros, zeros) == 0.0
    assert rel_l2(zeros + 1, zeros) == math.inf


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_are_compared_in_float64(dtype):
    """Every metric equals a float64 numpy computation to 1e-12; done in float32 they are off by ~1e-7."""
    generator = torch.Generator().manual_seed(0)
    ref = torch.rand(20000, generator=generator, dtype=torch.float64).to(torch.float32) * 100 + 0.01
    pred = (ref.double() * (1 + 0.2 * torch.randn(20000, generator=generator, dtype=torch.float64))).to(dtype)
    p, r = pred.double().numpy(), ref.double().numpy()  # both exactly representable in float64
    ratio = np.maximum(p / r, r / p)
    expected = {
        "equiv_max_abs_err": np.abs(p - r).max(),
        "equiv_rel_l2": np.linalg.norm(p - r) / np.linalg.norm(r),
        "equiv_absrel": np.mean(np.abs(p - r) / r),
        "equiv_delta1": np.mean(ratio < 1.25),
    }
    found = compare(pred, ref).metrics()
    for name, value in expected.items():
        assert found[name] == pytest.approx(value, rel=1e-12, abs=0), name


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shapes"):
        compare(torch.zeros(2, 3), torch.zeros(3, 2))


def test_metric_names():
    assert set(compare(torch.ones(3), torch.ones(3)).metrics()) == {
        "equiv_max_abs_err",
        "equiv_rel_l2",
        "equiv_absrel",
        "equiv_delta1",
    }
