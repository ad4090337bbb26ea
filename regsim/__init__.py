"""regsim: a reproducible simulation study of OLS, MLE, MAP and exact Bayes linear regression."""

__version__ = "0.1.0"
