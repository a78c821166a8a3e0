"""Built-in imrec plugin: baselines (under construction)."""
