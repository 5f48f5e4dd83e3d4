"""`python -m distilabel_llm.cli`: the same as the `distilabel-llm` command."""

import sys

from distilabel_llm.cli import main

if __name__ == "__main__":
    sys.exit(main())
