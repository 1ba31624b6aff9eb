"""What training leaves behind: runs and their metrics (runs.py), the honest test report
(report.py), history and learning-curve tables (history.py), predictions for every image
(predictions.py), and sample grids of the generative models (samples.py).

May import: project, training, data, labeling, models, progress, neighbours.
"""
