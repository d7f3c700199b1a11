"""Deterministic renderings of a gate decision: table, JSON report, Markdown, annotations."""
