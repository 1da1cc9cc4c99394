"""The commands end their process without the collector's final pass (vda.runtime.teardown)."""

import subprocess
import sys
import textwrap


def test_exit_freezes_the_objects_after_the_handlers_registered_later(tmp_path):
    out = tmp_path / "out.txt"
    script = textwrap.dedent(f"""
        import atexit, gc
        atexit.register(lambda: open({str(out)!r}, "a").write(f"frozen at the end: {{gc.get_freeze_count() > 0}}\\n"))
        from vda.runtime.teardown import skip_final_collection
        skip_final_collection()
        atexit.register(lambda: open({str(out)!r}, "a").write(f"frozen before: {{gc.get_freeze_count() > 0}}\\n"))
        with open({str(out)!r}, "w") as f:
            f.write("written\\n")
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert out.read_text().splitlines() == ["written", "frozen before: False", "frozen at the end: True"]


def test_entry_scripts_skip_the_final_collection():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for script in ("run_infer.py", "run_bench.py"):
        assert "\nskip_final_collection()" in (root / script).read_text(), script
