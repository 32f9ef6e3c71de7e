"""The one error type lstmimg raises for problems a person can fix."""


class LstmimgError(Exception):
    """A problem with the user's input (a path, a file, an option), with a message fit for a person.

    The CLI prints it as one line and exits with code 1; library users catch it like any exception.
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises ``KeyboardInterrupt`` (the CLI's handler): the same clean stop,
    exit code 143 instead of 130."""


class Interrupted(LstmimgError):
    """Work stopped by a signal, what was done kept; the CLI exits with ``exit_code`` (128 + the signal)."""

    exit_code = 130


class TrainingInterrupted(Interrupted):
    """Training stopped on SIGINT / SIGTERM after saving ``last.pt``; ``exit_code`` is 128 + the signal
    (130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, run, signum: int, epoch: int, step: int):
        import signal

        self.run, self.exit_code = run, 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"{name} at epoch {epoch}, step {step}: saved {run / 'last.pt'}; resume with: lstmimg train --resume {run}")


def article(word: object) -> str:
    """'an' before a vowel, else 'a': for messages such as "an image model"."""
    return "an" if str(word)[:1] in "aeiou" else "a"


def die_with_parent(sig: int, parent: int) -> None:
    """In a child process of ``parent`` (its pid, taken before the fork): have Linux send it ``sig``
    when its parent dies (even by ``kill -9``), so no worker outlives the command; elsewhere nothing
    (the parent's own handlers stop its children). A parent that died before this ran (the child is
    someone else's now) is the same: ``sig`` at once."""
    import os

    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)

