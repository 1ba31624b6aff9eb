"""Background work: job records shared by the UI and workers (records.py), the worker process
(worker.py), coalesced retrain requests (retrain.py), what a training job reports while it
runs (train_progress.py), and one module per job kind: import_job.py, map_job.py,
train_job.py.

Top of the library: may import every other package.
"""
