"""Exports: labels and predictions as CSV (tables.py), a trained model as a zip
(model_zip.py), images sorted into class folders as a zip (imagefolder.py).

May import: project, data, labeling, results.
"""
