"""Labels: the append-only label event log with undo (label_log.py), the user's classes
(classes.py), map selections to image ids (selection.py), which images to label next
(suggest.py), and the one-at-a-time label queue (queue.py).

May import: project, data, progress, neighbours.
"""
