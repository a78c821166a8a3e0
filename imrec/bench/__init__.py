"""Benchmarks: a matrix of recipes × seeds run as resumable cells, tidy records, tables with significance and
robustness summaries, plots and leaderboards (``imrec bench``; docs/benchmarks.md).

Modules, one concern each: ``definition`` (the YAML definition and its validation), ``matrix`` (cells and
running them), ``records`` (tidy JSONL records), ``stats`` (Avg, significance, robustness), ``tables``
(rendering), ``plot`` (metric vs missing rate), ``leaderboard`` (Markdown sections), ``cli`` (the command).
"""
