"""Every function that changes the database (INSERT, UPDATE, DELETE), one module per table family.

Reads stay where they were, in db/<family>.py; the writes of that family are in
db/writes/<family>.py (db/writes/run_edits.py and db/writes/bulk.py only write, so only they
live here). One package rather than a `<family>_writes.py` beside each reader, because:

- one name is the whole boundary: the import-linter contract that keeps pages and the CLI from
  writing around the services forbids `db.writes`, and a write module added later is covered
  without touching the contract;
- an import says what it is at the call site (`from db.writes import runs as run_writes`), so a
  reviewer sees a write path in a file's imports without reading the functions.

Who may import these: engine.services (checked, audited user actions), engine.execution (the
engine's own bookkeeping: claim, heartbeat, finish), engine.data / engine.deploy (the rows of
what they just stored) and tests/bench. Never dashboard/ or engine/cli/: those call services.

A write module may import its family's read module (records, errors, validation), never the
reverse, so reading the database never loads a write path.
"""
