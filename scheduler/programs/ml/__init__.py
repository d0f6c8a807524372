"""The machine-learning family: k-means, ridge regression, logistic regression, inference."""
