"""The project: one folder per image collection (folder.py), its SQLite store (store.py) and
the one way files are written beside it (files.py: temporary name, fsync, rename).

Lowest layer: imports nothing else from ssl_core.
"""
