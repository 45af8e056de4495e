"""The intra-op thread policy: small ops serial inside a step, heavy kernels on every thread."""

import pytest
import torch

from superscope.kernels.threads import MIN_PARALLEL_WORK, all_threads, small_ops_serial, torch_threads


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_serial_inside_and_heavy_work_opts_back_in(two_threads):
    with small_ops_serial():
        assert torch.get_num_threads() == 1
        with all_threads(MIN_PARALLEL_WORK):
            assert torch.get_num_threads() == 2
            with all_threads(MIN_PARALLEL_WORK):  # nested: stays parallel, and the outer block too
                assert torch.get_num_threads() == 2
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
        with all_threads(MIN_PARALLEL_WORK - 1):  # small work stays serial
            assert torch.get_num_threads() == 1
        with small_ops_serial():  # re-entrant
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_outside_a_step_all_threads_changes_nothing(two_threads):
    with all_threads(MIN_PARALLEL_WORK):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 2


def test_thread_count_restored_after_an_error(two_threads):
    with pytest.raises(RuntimeError):
        with small_ops_serial():
            with all_threads(MIN_PARALLEL_WORK):
                raise RuntimeError("boom")
    assert torch.get_num_threads() == 2
    with small_ops_serial():  # the policy is usable again
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_torch_threads_sets_and_restores_the_count(two_threads):
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == 2
    for leave_alone in (None, 0):
        with torch_threads(leave_alone):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 2
