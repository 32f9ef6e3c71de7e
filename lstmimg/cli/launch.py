"""``--devices N``: the same command on N processes of this machine, started by PyTorch's torchrun.

The launcher (``launch``) runs ``python -m lstmimg.cli.launch`` as its child: torchrun's own ``run``,
quiet (no traceback of its own, no log lines), exiting with the failed worker's exit code. The
launcher forwards SIGINT and SIGTERM to it once and waits, so the workers stop as one process would
(``last.pt``, exit 130 or 143); torchrun passes the signal on to its workers. If the launcher itself is
killed (``kill -9``), the kernel sends torchrun SIGTERM (Linux's parent-death signal), so no worker is
left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from functools import partial

from lstmimg.errors import die_with_parent

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def torchrun_command(devices: int, command: str, args: list[str]) -> list[str]:
    """The command line that runs ``lstmimg COMMAND ARGS`` on ``devices`` processes."""
    return [sys.executable, "-m", "lstmimg.cli.launch", "--standalone", f"--nproc_per_node={devices}", "-m", "lstmimg", command, *args]


def without_devices(argv: list[str]) -> list[str]:
    """``argv`` less ``--devices N`` / ``--devices=N`` (each worker is one process)."""
    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--devices":
            skip = True
        elif not arg.startswith("--devices="):
            args.append(arg)
    return args


def _die_with_parent(launcher: int) -> None:  # runs in the child before it starts: SIGTERM when the launcher dies (not Linux: the launcher's own handlers forward signals)
    die_with_parent(signal.SIGTERM, launcher)


def launch(devices: int, command: str, args: list[str]) -> tuple[int, bool]:
    """Run ``lstmimg COMMAND ARGS`` on ``devices`` processes and wait for them; their exit code (130 or
    143 when this process was stopped by SIGINT or SIGTERM), and whether it was. The child runs in its
    own session, so a Ctrl-C reaches the workers once, through this process and torchrun, not three
    times at once."""
    child = subprocess.Popen(torchrun_command(devices, command, args), start_new_session=True,
                             preexec_fn=partial(_die_with_parent, os.getpid()) if sys.platform.startswith("linux") else None)
    got: list[int] = []

    def forward(signum, frame):
        if not got:
            got.append(signum)
            child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in SIGNALS}
    try:
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:
                forward(signal.SIGINT, None)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if got:
        return 128 + got[0], True
    return (code if code >= 0 else 128 - code), False


def _quiet_torchrun(argv: list[str]) -> int:
    """torchrun (``torch.distributed.run``) with ``argv``, its log lines and tracebacks silenced: the
    workers say what went wrong themselves. The exit code is the first failed worker's (rank 0 first)."""
    import logging

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # what torchrun would set, without its warning line
    logging.disable(logging.CRITICAL)  # this process runs torchrun alone: none of its log lines are the user's
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    try:
        run(parse_args(argv))
    except ChildFailedError as e:
        _, first = e.get_first_failure()  # the earliest: the others were stopped because of it
        code = first.exitcode
        return code if code > 0 else 128 - code  # a worker killed by a signal: 128 + its number
    except SignalException as e:
        return 128 + int(e.sigval)
    return 0


if __name__ == "__main__":
    sys.exit(_quiet_torchrun(sys.argv[1:]))
