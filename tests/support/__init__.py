"""Helpers shared by the test modules. A test module imports helpers from here, never from
another test module (so moving or deleting one test file never breaks another).

- waiting.py   `wait_until`: poll a condition with a deadline, fail saying what was awaited
- commands.py  the `seedlab` CLI in this process (`cli`) or as its own program (`cli_process`),
               the repository root, a child process environment, a free TCP port
- engine.py    a worker subprocess (`start_worker` / `stop_worker`), a run's status, a messy CSV
- pages.py     dashboard pages through Streamlit's AppTest (`open_page`, `go`, `button`, …)
- data.py      database rows and runs: a stub dataset row, a run trained for real
"""
