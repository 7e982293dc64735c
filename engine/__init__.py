"""Seedlab's engine: dataset ingest, run configs, the training loop, the worker and the CLI."""
