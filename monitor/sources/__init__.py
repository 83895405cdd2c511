"""Where articles come from: feeds, fetched over HTTP and parsed into typed entries."""
