"""Sensors of the Mistral AI Batch provider."""
