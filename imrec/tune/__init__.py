"""``imrec tune``: hyper-parameter search on VALID with Optuna (docs/tuning.md)."""
