"""The semi-supervised methods, as sklearn-style estimators (fit(X, y) with -1 = unlabeled)."""
