"""Triggers of the Mistral AI Batch provider."""
