"""The benchmark's commands, added to `posada` through the `posada.commands` entry points
(`posada.cli.plugins`): bench, loadtest, budget, fake-llm, db profile and scaletest."""
