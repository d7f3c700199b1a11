"""Benchmarks: whole-process timings side by side with a peer, never timed assertions."""
