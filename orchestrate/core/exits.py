"""Exit codes a pipeline can branch on, the same for every command."""

# a check said no, on purpose and with the reason printed: the monitor found drift
# (monitor --fail-on-drift), promote refused the candidate
DECLINED = 3
