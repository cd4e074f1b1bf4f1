"""Mistral's batch API for Airflow's common-ai provider (``LLMBatchOperator``,
``@task.llm_batch``): the adapter in :mod:`.adapter`, loaded by common-ai through this
distribution's entry point only when a ``mistral:`` model is dispatched.

This package's ``__init__`` imports nothing, so that the provider imports, and a DAG file
parses, without common-ai installed (the ``[common-ai]`` extra).
"""
