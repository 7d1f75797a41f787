"""The plumbing both local emulators share: a threaded loopback server that
starts and stops in-process, a handler that sends a whole reply, and ``spawn``
to run one as a separate process."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO

log = logging.getLogger(__name__)


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}"

    def start(self):
        threading.Thread(target=self.serve_forever, name=type(self).__name__, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def run_until_terminated(self, name: str) -> int:
        """The command-line mode: serve in the foreground until SIGTERM or Ctrl-C."""
        # as PID 1 in a container SIGTERM has no default action: exit on it explicitly
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        print(f"{name} listening on {self.url}", flush=True)
        try:
            self.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.server_close()
        return 0


class ReplyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # route http.server's access log through logging
        log.debug("%s %s", self.address_string(), fmt % args)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the caller gave up first (its read timeout)
            log.debug("%s went away before the reply", self.address_string())
            self.close_connection = True


def spawn(argv: list[str], env: dict[str, str], timeout: float = 30.0,
          log: IO | None = None) -> tuple[subprocess.Popen, str]:
    """Start an emulator (``python -m devtools.X --port 0 ...``) and return it with the URL it
    printed; its log (stderr) goes to ``log``, else to this process's stderr."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
                            start_new_session=True)
    ready: list[str] = []
    reader = threading.Thread(target=lambda: ready.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    line = ready[0] if ready else ""
    match = re.search(r"listening on (http://\S+)", line)
    if not match:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{' '.join(argv)} did not start (exit {proc.returncode}): {line!r}")
    return proc, match.group(1)
