"""What Snakemake needs besides the stages: rule params, code keys, planning warnings, the guard of
damaged outputs, job sizes, and the harness every job script runs in."""
