"""orchestrate: bincounter's AWS control plane (``python -m orchestrate --help``)."""
