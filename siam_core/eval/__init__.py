"""Evaluation toolkit: metrics, the benchmark runner and reports."""
