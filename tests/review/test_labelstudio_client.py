"""The Label Studio client sends its API token to the configured server only: a redirect to
another host is refused before anything is sent there, plain http to another machine is
refused unless asked for. Two real HTTP servers on loopback addresses stand for the hosts."""

from __future__ import annotations

import pytest

from devtools.local_http import LocalServer, ReplyHandler
from devtools.local_serve import free_port
from orchestrate.review.labelstudio import LabelStudio, LabelStudioError

TOKEN = "a-legacy-token-of-40-characters-0123456"


class Recorder(ReplyHandler):
    """Answers every GET with ``self.server.answer`` (status, headers, body); keeps the headers seen."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.seen.append((self.path, dict(self.headers)))
        status, headers, body = self.server.answer(self.path)
        self._send(status, body, headers)


def serve(host: str, answer) -> LocalServer:
    server = LocalServer((host, free_port()), Recorder)
    server.seen, server.answer = [], answer
    return server.start()


@pytest.fixture
def hosts():
    other = serve("127.0.0.2", lambda path: (200, {"Content-Type": "application/json"}, b'{"results": []}'))

    def answer(path):
        if path.startswith("/api/projects?"):       # elsewhere: another host
            return 302, {"Location": f"{other.url}/api/projects"}, b""
        if path == "/api/users":                    # same host, another path
            return 302, {"Location": "/api/users/"}, b""
        return 200, {"Content-Type": "application/json"}, b'[{"id": 1, "email": "a@b"}]'
    home = serve("127.0.0.1", answer)
    yield home.url, home, other
    home.stop()
    other.stop()


def test_a_redirect_to_another_host_is_refused_and_the_token_never_reaches_it(hosts):
    url, home, other = hosts
    ls = LabelStudio(url, TOKEN)
    with pytest.raises(LabelStudioError, match=r"redirected to http://127\.0\.0\.2:\d+: refused"):
        ls.project("t1 recounts", "<View/>")
    assert other.seen == []                      # nothing at all reached the other host
    assert home.seen[0][1]["Authorization"] == f"Token {TOKEN}"


def test_a_redirect_on_the_same_host_is_followed_with_the_token(hosts):
    url, home, _ = hosts
    assert LabelStudio(url, TOKEN).users() == {1: "a@b"}
    assert [p for p, _ in home.seen] == ["/api/users", "/api/users/"]
    assert all(h["Authorization"] == f"Token {TOKEN}" for _, h in home.seen)


@pytest.mark.parametrize("url", ["http://labels.example.com:8090", "http://10.0.0.7:8090"])
def test_plain_http_to_another_machine_is_refused_unless_asked_for(url):
    with pytest.raises(LabelStudioError, match="in the clear; use https, or --insecure-http"):
        LabelStudio(url, TOKEN)
    assert LabelStudio(url, TOKEN, insecure_http=True).url == url   # asked for: allowed (no call made yet)
    LabelStudio(url.replace("http://", "https://"), TOKEN)
    for local in ("http://127.0.0.1:8090", "http://localhost:8090"):
        LabelStudio(local, TOKEN)
