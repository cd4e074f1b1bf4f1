"""HTTP mechanics of the hook: calls, error mapping, retry policy, clients, streams."""
