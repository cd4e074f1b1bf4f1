"""Private helpers of the provider, one module per idea; no public API."""
