"""A PID-1-safe front for the toolkit's ``train``: ``python -m bincounter.training.launch train``.

SageMaker stops a job (spot interruption, StopTrainingJob) with SIGTERM to the
container's PID 1 and SIGKILL 120 s later. When PID 1 is the toolkit's
``train``, the signal is lost: the toolkit installs no handler, and the kernel
drops default-action signals sent to a namespace's PID 1; the script is then
killed without a last checkpoint. This front runs the command with SIGTERM
ignored (inherited through exec, so the toolkit keeps waiting for its child;
train.py installs its own handler over it), forwards SIGTERM to the command's
process group, and exits with the command's status once the script has saved
its checkpoint and the toolkit has written ``output/failure``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

log = logging.getLogger(__name__)


def run(command: list[str]) -> int:
    if not command:
        raise SystemExit("usage: python -m bincounter.training.launch COMMAND [ARGS...]")

    def ignore_term() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    child = subprocess.Popen(command, preexec_fn=ignore_term, start_new_session=True)

    def forward(signum, _frame) -> None:
        log.warning("received %s: forwarding it to %s (process group %d)",
                    signal.Signals(signum).name, command[0], child.pid)
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:  # already gone
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    return 128 - code if code < 0 else code  # killed by a signal: the shell's convention


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
