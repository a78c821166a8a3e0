"""Built-in imrec plugin: data (under construction)."""
