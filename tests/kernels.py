"""A real IPython kernel, driven as a notebook front end drives it (jupyter_client)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager


class Kernel:
    """An IPython kernel driven like a notebook front end: execute cells, interrupt them."""

    def __init__(self, manager: KernelManager, client: BlockingKernelClient) -> None:
        self.manager, self.client = manager, client

    def start(self, code: str) -> str:
        return str(self.client.execute(code))

    def finish(self, msg_id: str, *, timeout: float = 120) -> list[dict[str, Any]]:
        """The outputs of a cell (stream, results, errors), once the kernel is idle again."""
        outputs: list[dict[str, Any]] = []
        while True:
            message = self.client.get_iopub_msg(timeout=timeout)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind in {"stream", "execute_result", "display_data", "error"}:
                outputs.append({"output_type": kind, **content})
            if kind == "status" and content["execution_state"] == "idle":
                return outputs

    def run(self, code: str) -> list[dict[str, Any]]:
        outputs = self.finish(self.start(code))
        errors = [out for out in outputs if out["output_type"] == "error"]
        assert errors == [], errors
        return outputs

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()  # SIGINT, as JupyterLab's Stop button

    def complete(self, code: str, cursor: int | None = None) -> tuple[str, list[tuple[str, str]]]:
        """What a front end's Tab gets (complete_request): the text it replaces, and each match with its type."""
        cursor = len(code) if cursor is None else cursor
        msg_id = self.client.complete(code, cursor)
        while True:
            reply = self.client.get_shell_msg(timeout=120)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content = reply["content"]
        assert content["status"] == "ok", content
        types = content["metadata"].get("_jupyter_types_experimental", [])
        replaced = code[content["cursor_start"] : content["cursor_end"]]
        return replaced, [(t["text"], t.get("type", "")) for t in types] or [(m, "") for m in content["matches"]]


@contextmanager
def started_kernel(env: dict[str, str], cwd: Path) -> Iterator[Kernel]:
    """A kernel started in ``cwd`` with exactly the environment ``env``, shut down afterwards."""
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env, cwd=str(cwd))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        yield Kernel(manager, client)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
