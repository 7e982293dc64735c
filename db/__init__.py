"""Seedlab's storage: the only package that writes SQL. It imports nothing else of ours."""
