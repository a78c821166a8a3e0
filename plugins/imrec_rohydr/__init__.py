"""Built-in imrec plugin: rohydr (under construction)."""
