"""Built-in imrec plugin: protocols (under construction)."""
