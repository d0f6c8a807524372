"""The statistics family: per-column aggregates, order statistics, histograms, covariance."""
