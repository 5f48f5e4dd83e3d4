"""`python -m benchmarks`: run every benchmark and print one summary table (see `run.py`)."""

from benchmarks.run import main

raise SystemExit(main())
