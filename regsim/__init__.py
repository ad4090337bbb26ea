"""regsim: a reproducible simulation study of OLS, MLE and MAP linear regression."""

__version__ = "0.1.0"
