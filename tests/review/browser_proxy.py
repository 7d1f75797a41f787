"""A loopback proxy in front of Label Studio that signs a headless browser in: every request
gets the session cookie of a real login. Chromium takes no cookie on its command line; Label
Studio is started with this proxy as its public URL, so its pages name their assets and API
calls by it. It records what it forwarded, so a test can tell the photo reached the page."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

from devtools.local_http import LocalServer, ReplyHandler

HOP = {"host", "cookie", "connection", "accept-encoding", "content-length", "transfer-encoding", "keep-alive"}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the browser follows redirects itself
        return None


class CookieProxy(LocalServer):
    def __init__(self, port: int):
        super().__init__(("127.0.0.1", port), _Forward)
        self.upstream, self.cookie, self.seen = "", "", []
        self.opener = urllib.request.build_opener(_NoRedirect)

    def log_in(self, email: str, password: str) -> None:
        """Sign in through Label Studio's own login form (CSRF token and all); keep the cookie."""
        jar = CookieJar()
        op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = op.open(self.upstream + "/user/login/", timeout=30).read().decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf, "email": email, "password": password}).encode()
        op.open(urllib.request.Request(self.upstream + "/user/login/", data=form,
                                       headers={"Referer": self.upstream + "/user/login/"}), timeout=30)
        if "sessionid" not in {c.name for c in jar}:
            raise RuntimeError("Label Studio did not sign the admin in")
        self.cookie = "; ".join(f"{c.name}={c.value}" for c in jar)


class _Forward(ReplyHandler):
    def _forward(self) -> None:
        server: CookieProxy = self.server  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        if server.cookie:
            headers["Cookie"] = server.cookie
        req = urllib.request.Request(server.upstream + self.path, method=self.command, headers=headers,
                                     data=self.rfile.read(length) if length else None)
        try:
            with server.opener.open(req, timeout=60) as reply:
                status, body, got = reply.status, reply.read(), reply.headers
        except urllib.error.HTTPError as exc:
            status, body, got = exc.code, exc.read(), exc.headers
        server.seen.append((self.command, self.path, status))
        self._send(status, body, {k: v for k, v in got.items() if k.lower() not in HOP | {"set-cookie"}})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward
