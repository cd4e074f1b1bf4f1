"""Operators of the Mistral AI Batch provider."""
