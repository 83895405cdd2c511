"""Turning parsed entries into stored, deduplicated, tagged articles."""
