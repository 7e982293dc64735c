"""The `seedlab` command line.

main.py builds the app and adds one module per command group: datasets, runs (+ export: what is
made from a completed run), projects, demo, engine (init, worker, dashboard, up, engine status),
predict, sweeps, users, audit, models, cluster. common.py holds what they share (settings and a
migrated database, the CLI's actor, JSON output, `fail`). Only this package imports it.
"""
