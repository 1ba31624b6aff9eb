"""Training machinery shared by every model: the training loop with budgets and callbacks
(trainer.py), learning-rate schedules that finish on time (schedules.py), and validation splits
with Wilson intervals (validation.py).

May import: project, progress, threads.
"""
