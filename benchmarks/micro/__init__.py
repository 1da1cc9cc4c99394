"""pytest-benchmark micro-benchmarks (their options: benchmarks/conftest.py)."""
