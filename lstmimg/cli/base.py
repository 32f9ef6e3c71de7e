"""What every command shares: the typer app, the two consoles, and the guard that turns a library error
into one red line and an exit code."""

from __future__ import annotations

import os
from collections.abc import Callable

import typer
from rich.console import Console
from rich.markup import escape

from lstmimg.errors import Interrupted, LstmimgError, Terminated

app = typer.Typer(
    name="lstmimg",
    help="Classify images and videos with LSTMs: train, predict, eval.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

out = Console()

err = Console(stderr=True)


def run_guarded(work: Callable[[], None]) -> None:
    """Run a command body: LstmimgError becomes one red line and exit code 1; Ctrl-C exits 130 and
    SIGTERM, which stops a command as Ctrl-C does, 143."""
    import signal
    import threading

    def terminate(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate) if threading.current_thread() is threading.main_thread() else None
    try:
        work()
    except Interrupted as e:
        if os.environ.get("RANK", "0") == "0":  # under torchrun, process 0 says it for all
            err.print(f"[bold yellow]interrupted:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    except LstmimgError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)  # text as it is: "lstmimg[onnx]" is no markup
        raise typer.Exit(1) from None
    except KeyboardInterrupt as e:
        err.print("interrupted")
        raise typer.Exit(signal_exit_code(e)) from None
    except Exception as e:  # a signal that landed inside a library's import machinery comes wrapped (Python wraps what __set_name__ raises)
        if not isinstance(e.__cause__, KeyboardInterrupt):
            raise
        err.print("interrupted")
        raise typer.Exit(signal_exit_code(e.__cause__)) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def signal_exit_code(e: KeyboardInterrupt) -> int:
    """143 for SIGTERM, 130 for Ctrl-C."""
    return 143 if isinstance(e, Terminated) else 130


BACKEND_HELP = "torch, onnx (the run's verified ONNX export, on ONNX Runtime), or auto: onnx when there is one and the device is the CPU."


def open_model(model, default_kind: str, kind: str | None, backend: str, device: str, say: bool = True):
    """The model a classifying command runs (``model``, else the newest run or bundled model of
    ``default_kind``), on which backend, and the device type it runs on; says so in the first line."""
    from lstmimg.engine.infer.loading import load_model, resolve_device
    from lstmimg.runs import resolve_model

    path, why = resolve_model(model, default_kind)
    ckpt, runs_on = load_model(path, kind, backend, device)
    where = "cpu" if runs_on.startswith("onnx") else resolve_device(device).type  # ONNX Runtime runs on the CPU here
    if say:
        err.print(f"model: {path} ({why})  {ckpt.kind} model  backend {runs_on}  device {where}", highlight=False, soft_wrap=True)
    return ckpt, where


def check_min(option: str, value: int, low: int) -> None:
    if value < low:
        raise LstmimgError(f"{option} must be >= {low}, got {value}")
