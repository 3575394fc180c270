"""Benchmarks (`make bench`, `make bench-gpu`): figures for the README, apart from the tests."""
