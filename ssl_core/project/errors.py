"""The base of every error about a project's storage, so a caller (the app, the CLI) can say
"the project folder ..." for any of them: StoreError (the database, store.py) and
FileWriteError (a file beside it, files.py)."""


class ProjectError(RuntimeError):
    """Something about the project's storage; the message is meant for the user."""
