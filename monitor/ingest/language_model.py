"""Loads the language detector's model on import: the prepare pool's fork server imports this,
so every worker it forks shares the model's pages (some 80 MB) instead of loading its own."""

from __future__ import annotations

from monitor.ingest.language import load_model

load_model()
