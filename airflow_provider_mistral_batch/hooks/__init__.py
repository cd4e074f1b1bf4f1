"""Hooks of the Mistral AI Batch provider."""
