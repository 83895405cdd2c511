"""Reviewing: the alerts inbox's state per article and topic (store), and its views (inbox)."""
