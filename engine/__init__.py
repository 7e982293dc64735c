"""Seedlab's engine, one package per concern (README "Architecture"): core, data, ml, deploy,
report, services, execution and cli, each importing only the ones below it (.importlinter)."""
