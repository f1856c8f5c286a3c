"""Benchmark scripts (one per figure in BENCHMARKS.md) and the GPU suite (benchmarks/gpu/)."""
