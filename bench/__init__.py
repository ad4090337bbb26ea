"""The benchmark of regsim (bench/run.py); see bench/README.md."""
