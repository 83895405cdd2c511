"""Watched topics: their definitions, the matcher, and tagging articles with them."""
