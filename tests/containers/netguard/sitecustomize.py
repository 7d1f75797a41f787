"""Test-only network guard for the local-mode tests (on PYTHONPATH of the orchestrate
process they start): every DNS lookup or connect that is not loopback or a Unix socket
is refused and written to $NETGUARD_LOG, so a test can prove the command stayed offline."""

import ipaddress
import os
import socket
import sys

_LOG = os.environ.get("NETGUARD_LOG")


def _loopback(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str):
    if _LOG:
        with open(_LOG, "a") as log:
            log.write(f"BLOCKED {what}\n")
    raise ConnectionRefusedError(f"netguard: {what} refused (the test expects no network)")


def _hook(event, args):
    if event == "socket.getaddrinfo" and not _loopback(args[0]):
        _refuse(f"DNS lookup of {args[0]!r}")
    elif event == "socket.connect":
        sock, address = args
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            _refuse(f"connect to {address!r}")


if _LOG:
    sys.addaudithook(_hook)
