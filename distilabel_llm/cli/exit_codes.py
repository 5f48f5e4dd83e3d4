"""The command's exit codes besides 0 (done) and 2 (a usage error, argparse's)."""

EXIT_ERROR = 1
EXIT_ROWS_FAILED = 3  # the job ran to its end, but some rows have an error
EXIT_BUDGET = 4  # the budget stopped the job: rows left pending for a larger budget
EXIT_INTERRUPTED = 130  # the shell's code for a Ctrl-C
EXIT_TERMINATED = 143  # the shell's code for a SIGTERM
