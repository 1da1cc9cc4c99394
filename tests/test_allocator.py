"""The host allocator of the model's loop: with ``reuse`` a freed large block is reused without faulting its pages
in again, and leaving the scope gives glibc's behaviour back."""

import resource
import sys

import pytest
import torch

from vda.runtime.allocator import Allocator, allocator_scope


def faults() -> int:
    """Page faults of allocating, filling and freeing a 64 MiB tensor twenty times (after two warm-ups: the heap
    grows on the first)."""
    torch.ones(1 << 24).sum()
    torch.ones(1 << 24).sum()
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        torch.ones(1 << 24).sum()  # every page written, freed at the end of the statement
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the setting acts on glibc only")
def test_reuse_stops_the_page_faults_of_freed_blocks_inside_its_scope_only():
    before = faults()  # glibc's default: each block mmapped and faulted in afresh (4 KiB pages: 16384 a block)
    with allocator_scope(Allocator.auto) as applied:  # torch's own allocations: reuse
        inside = faults()
    after = faults()
    assert applied and before >= 20 * 32  # 32 faults a block even with 2 MiB pages
    assert inside <= before / 5  # the heap may still grow once or twice, then the same pages serve every block
    assert after >= before / 2  # the default is back: the kept memory was returned


def test_system_changes_nothing_and_names_are_checked():
    with allocator_scope(Allocator.system) as applied:
        assert applied is False
    with allocator_scope(Allocator.auto, own_runtime=True) as applied:  # a graph runtime keeps its own buffers
        assert applied is False
    assert Allocator.auto.resolve(own_runtime=False) is Allocator.reuse
    with pytest.raises(ValueError):
        with allocator_scope("jemalloc"):
            pass
