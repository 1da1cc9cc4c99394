"""Benchmarks: pytest-benchmark micro-benchmarks (``micro/``) and the figure scripts (``figure_*.py``, thin wrappers
over the bench scenarios). A package, so that its conftest is imported as ``benchmarks.conftest`` and never shadows
``tests/conftest.py``, whose helpers the tests import by name."""
