"""The test suite, one folder per package layer (see docs/theory.md and tests/test_architecture.py)."""
