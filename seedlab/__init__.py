"""Seedlab's client SDK: log runs that train outside Seedlab into a Seedlab server.

This package is the SDK's home and, for now, holds only its version. The SDK itself comes with
issue 19 (`seedlab.init(...)`, `seedlab.log(...)` and friends, talking to the server's HTTP API
under /api/v1, beside the dashboard: dashboard/web.py).

It ships two ways:
- as its own small distribution, `seedlab-sdk` (built from sdk/pyproject.toml), for a user's
  training environment. It must stay standard library only: installing it adds neither the
  server's packages (`db`, `engine`, `dashboard`) nor torch, and importing it imports neither;
- inside the server's own install (the root pyproject.toml), beside those packages.

`__version__` is the one version number of both distributions (the root pyproject.toml and
sdk/pyproject.toml read it from here), so an SDK and a server of the same version match.
"""

__version__ = "0.1.0"
