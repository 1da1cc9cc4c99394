"""Benchmarks (pytest-benchmark suites and scripts). A package, so that its conftest is imported as
``benchmarks.conftest`` and never shadows ``tests/conftest.py``, whose helpers the tests import by name."""
