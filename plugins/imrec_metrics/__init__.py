"""Built-in imrec plugin: metrics (under construction)."""
