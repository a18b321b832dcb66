"""Comparing runs with the baseline: selecting runs, seed groups and their tests, the report."""
