"""Stores of runs, templates, logs and the memoization cache: in memory, or SQLite."""
