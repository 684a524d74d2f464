"""Benchmark harness: training, evaluation, experiments, plots and leaderboards."""
