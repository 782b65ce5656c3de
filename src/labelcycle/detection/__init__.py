"""Annotation-error detection: leakage-free features, the LightGBM error model, curation and review."""
