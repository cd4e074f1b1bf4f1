"""The batch domain: input, identity, waiting, results and the verdict."""
