"""Data quality: what to fix in a project's images and labels before training.

    duplicates.py     exact and near-duplicate groups, with a threshold calibrated on the project
    descriptor.py     the pixel descriptor for near-duplicates and the copy transforms behind it
    outliers.py       the images least like the rest, ranked
    label_errors.py   likely label errors (confident learning on out-of-sample probabilities)
    balance.py        label balance per class and the warnings before training
    marks.py          the user's decisions (excluded copies, kept labels) in the project database
    report.py         the quality report on disk, its staleness keys and per-image flags
    compute.py        computing the report (the quality job, the CLI, a notebook)
    summary.py        the report as plain data and text (CLI and Quality page headlines)
"""
