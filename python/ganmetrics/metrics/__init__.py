"""Metric implementations, one module per family."""
