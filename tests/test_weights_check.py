import pytest
import torch

from hessgpt.errors import HessError
from hessgpt.weights_check import check_weights


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_one_bad_value_anywhere_is_refused_with_its_tensor_and_count(dtype, bad):
    weight = torch.randn(300, 70).to(dtype)
    weight[211, 33] = bad
    with pytest.raises(HessError, match=r"^m\.pt: weight h\.0\.w holds 1 NaN or infinite value\(s\)"):
        check_weights({"wte": torch.randn(4, 4), "h.0.w": weight}, "m.pt")


def test_finite_and_empty_weights_pass():
    check_weights({"a": torch.randn(5, 5), "empty": torch.empty(0, 7), "b": torch.full((3,), 6.0e4).half()}, "m.pt")


def test_a_non_float_weight_is_refused():
    with pytest.raises(HessError, match="weight ids has dtype int64"):
        check_weights({"ids": torch.arange(3)}, "m.pt")
