"""Getting matched articles to people: subscriptions, digests, rendering and mail."""
