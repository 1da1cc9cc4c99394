"""The host allocator setting: with ``reuse`` a freed large block is reused without faulting its pages in again."""

import subprocess
import sys
from pathlib import Path

import pytest

from vda.runtime.allocator import Allocator, use_allocator

CONF = Path(__file__).resolve().parents[1] / "conf"

# One process (the setting is process-wide): page faults of allocating, filling and freeing a 64 MiB tensor ten
# times with the C library's default, then ten times after use_allocator("reuse").
FAULTS = """
import resource, torch
from vda.runtime.allocator import use_allocator

def faults():
    torch.ones(1 << 24).sum()  # warm-up: the first fill of a fresh heap faults in either setting
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        torch.ones(1 << 24).sum()  # 64 MiB, every page written, freed at the end of the statement
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start

system = faults()
print(use_allocator("reuse"), system, faults())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the setting acts on glibc only")
def test_reuse_stops_the_page_faults_of_freed_blocks():
    out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, check=True).stdout
    applied, system, reuse = out.split()
    assert applied == "True"
    # glibc's default: each block is mmapped and faulted in afresh (4 KiB pages: 16384 faults; huge pages: 32)
    assert int(system) >= 10 * 32
    assert int(reuse) <= int(system) / 20


def test_system_changes_nothing_and_names_are_checked():
    assert use_allocator(Allocator.system) is False
    with pytest.raises(ValueError):
        use_allocator("jemalloc")


@pytest.mark.parametrize("command", ["infer", "bench"])
def test_the_entry_points_set_the_allocator_the_config_names(monkeypatch, command):
    from hydra import compose, initialize_config_dir

    from vda import entry
    from vda.bench.config import register_configs as register_bench
    from vda.infer.config import register_configs as register_infer

    (register_infer if command == "infer" else register_bench)()
    chosen = []
    monkeypatch.setattr(entry, "use_allocator", chosen.append)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        overrides = ["allocator=system"] + (["input=clip.mp4"] if command == "infer" else [])
        cfg = entry.typed(compose(command, overrides=overrides))
    assert cfg.allocator is Allocator.system and chosen == [Allocator.system]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        assert entry.typed(compose(command, overrides=overrides[1:])).allocator is Allocator.reuse  # the default
