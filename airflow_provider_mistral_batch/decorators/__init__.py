"""TaskFlow decorators of the Mistral AI Batch provider (``@task.mistral_batch``)."""
