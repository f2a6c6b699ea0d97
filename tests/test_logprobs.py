"""The one log-prob function against hand computation."""

import math

import pytest
import torch

from vlmalign.models.logprobs import IGNORE_INDEX, response_logps


def test_matches_hand_computation_with_shift_and_masking():
    # Vocab of 3, one sequence of 4 positions. Labels: prompt at 0-1 masked, response tokens at 2 and 3.
    logits = torch.tensor([[[0.0, 0.0, 0.0],      # predicts position 1 (masked)
                            [1.0, 2.0, 3.0],      # predicts position 2 -> token 2
                            [0.0, math.log(3), 0.0],  # predicts position 3 -> token 1
                            [9.0, 9.0, 9.0]]])    # last position predicts nothing
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 2, 1]])
    out = response_logps(logits, labels)
    first = 3.0 - math.log(math.exp(1) + math.exp(2) + math.exp(3))
    second = math.log(3) - math.log(1 + 3 + 1)
    assert out.sum.item() == pytest.approx(first + second, abs=1e-6)
    assert out.count.tolist() == [2]
    assert out.mean.item() == pytest.approx((first + second) / 2, abs=1e-6)


def test_padding_and_prompt_never_count():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.full((2, 5), IGNORE_INDEX)
    labels[0, 3] = 4
    out = response_logps(logits, labels)
    expected = torch.log_softmax(logits[0, 2], -1)[4]
    assert out.sum[0].item() == pytest.approx(expected.item(), abs=1e-6)
    assert out.sum[1].item() == 0.0 and out.count.tolist() == [1, 0]


def test_hidden_plus_head_equals_full_logits_path_including_gradients():
    torch.manual_seed(0)
    hidden = torch.randn(3, 6, 8, requires_grad=True)
    head = torch.nn.Linear(8, 11, bias=False)
    labels = torch.randint(0, 11, (3, 6))
    labels[:, :2] = IGNORE_INDEX
    labels[2, 4:] = IGNORE_INDEX
    fast = response_logps(hidden, labels, head=head, chunk_size=3)
    fast.sum.sum().backward()
    grad_fast = hidden.grad.clone()
    hidden.grad = None
    plain = response_logps(head(hidden), labels)
    plain.sum.sum().backward()
    torch.testing.assert_close(fast.sum, plain.sum)
    torch.testing.assert_close(grad_fast, hidden.grad)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="disagree"):
        response_logps(torch.zeros(2, 4, 3), torch.zeros(2, 5, dtype=torch.long))
