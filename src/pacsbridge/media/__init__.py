"""Media: turning input files into pixel data (stills now, video later)."""
