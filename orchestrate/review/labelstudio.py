"""Label Studio's REST API, the few calls the review loop makes (label-studio 1.x).

A thin client over urllib: the server's URL and API token come from the configuration and
the environment (``[review]``), never from code, and the token is never logged, printed or
written anywhere. A legacy API token is sent as ``Token``; a personal access token (a JWT
refresh token) is exchanged once for an access token, sent as ``Bearer``. Every failure is
one ``LabelStudioError`` line: the server does not answer, refuses the token, or answers
something else than the API's shape.

The token goes to the configured server only: a redirect to another host is refused (urllib
would resend the ``Authorization`` header there), and plain ``http://`` is refused for any host
but this machine's unless ``[review] insecure_http`` says so (the token would cross the network
in the clear).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

log = logging.getLogger(__name__)
PAGE = 100


class LabelStudioError(RuntimeError):
    """Label Studio did not do what was asked; the message says what and where."""


LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


class _SameHostOnly(urllib.request.HTTPRedirectHandler):
    """Follow a redirect on the same scheme, host and port only: the request carries the token."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url,
                                                                                                   newurl))
        if (old.scheme, old.netloc) != (new.scheme, new.netloc):
            raise LabelStudioError(f"Label Studio at {old.scheme}://{old.netloc} redirected to {new.scheme}://"
                                   f"{new.netloc}: refused, the request carries the API token (set [review] url "
                                   "to where it should go)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameHostOnly)


@dataclass(frozen=True)
class LabelStudio:
    url: str
    token: str
    timeout: float = 30.0
    insecure_http: bool = False

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LabelStudioError(f"[review] url {self.url!r}: give Label Studio's http(s)://host:port")
        if parts.scheme == "http" and not _loopback(parts.hostname) and not self.insecure_http:
            raise LabelStudioError(f"[review] url {self.url}: plain http to another host would send the API token "
                                   "in the clear; use https, or --insecure-http ([review] insecure_http) on a "
                                   "network you trust")
        if not self.token:
            raise LabelStudioError("no Label Studio API token: set the environment variable [review] token_env "
                                   "names (default LABEL_STUDIO_API_KEY)")
        if self.token.count(".") == 2:  # a personal access token: a JWT to exchange
            access = self._call("POST", "/api/token/refresh", {"refresh": self.token}, auth=False)
            object.__setattr__(self, "_auth", f"Bearer {access['access']}")
        else:
            object.__setattr__(self, "_auth", f"Token {self.token}")

    def __repr__(self) -> str:  # never the token
        return f"LabelStudio({self.url!r})"

    def _call(self, method: str, path: str, body=None, auth: bool = True):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = self._auth  # type: ignore[attr-defined]
        req = urllib.request.Request(self.url.rstrip("/") + path, method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
        try:
            with _OPENER.open(req, timeout=self.timeout) as reply:
                text = reply.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            try:
                detail = json.loads(detail).get("detail") or detail
            except (ValueError, AttributeError):
                pass
            if exc.code in (401, 403):
                raise LabelStudioError(f"Label Studio at {self.url} refused the API token (HTTP {exc.code}: "
                                       f"{detail}); check the token in the environment variable "
                                       "[review] token_env names") from None
            raise LabelStudioError(f"Label Studio at {self.url}: {method} {path.split('?')[0]} answered "
                                   f"HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LabelStudioError(f"Label Studio at {self.url} does not answer ({reason}); is it running? "
                                   "(docker compose --profile review up -d labelstudio, or set [review] url)") from None
        try:
            return json.loads(text) if text else None
        except ValueError:
            raise LabelStudioError(f"Label Studio at {self.url}: {method} {path.split('?')[0]} answered "
                                   "something that is not JSON (is that URL Label Studio?)") from None

    def find(self, title: str) -> int | None:
        """The id of the project called ``title``, or None."""
        page = 1
        while True:  # the title filter narrows the list where the server has it; the match is ours
            found = self._call("GET", "/api/projects?" + urllib.parse.urlencode(
                {"title": title, "page_size": PAGE, "page": page})) or {}
            for p in found.get("results", []):
                if p.get("title") == title:
                    return int(p["id"])
            if not found.get("next"):
                return None
            page += 1

    def project(self, title: str, label_config: str) -> int:
        """The id of the project called ``title``, created with ``label_config`` if there is none."""
        found = self.find(title)
        if found is not None:
            return found
        made = self._call("POST", "/api/projects", {"title": title, "label_config": label_config})
        log.info("created Label Studio project %r (%s)", title, made["id"])
        return int(made["id"])

    def label_config(self, project: int) -> str:
        return (self._call("GET", f"/api/projects/{project}") or {}).get("label_config", "")

    def set_label_config(self, project: int, label_config: str) -> None:
        self._call("PATCH", f"/api/projects/{project}", {"label_config": label_config})

    def tasks(self, project: int) -> list[dict]:
        """Every task of ``project`` (data and ids), page by page."""
        out, page = [], 1
        while True:
            got = self._call("GET", f"/api/tasks?project={project}&page_size={PAGE}&page={page}")
            out += got.get("tasks", [])
            if len(out) >= got.get("total", 0) or not got.get("tasks"):
                return out
            page += 1

    def import_tasks(self, project: int, tasks: list[dict]) -> int:
        done = self._call("POST", f"/api/projects/{project}/import", tasks) if tasks else {"task_count": 0}
        return int(done.get("task_count", 0))

    def export(self, project: int) -> list[dict]:
        """Every task with its annotations and predictions (the JSON export)."""
        return self._call("GET", f"/api/projects/{project}/export?exportType=JSON&download_all_tasks=true")

    def predictions(self, task: int) -> list[dict]:
        """A task's pre-annotations (the export lists only their ids)."""
        return self._call("GET", f"/api/predictions?task={task}") or []

    def users(self) -> dict[int, str]:
        """{user id: email}: annotations name their annotator by id."""
        return {int(u["id"]): u.get("email") or u.get("username") or str(u["id"]) for u in self._call("GET", "/api/users")}

    def storages(self, project: int, kind: str) -> list[dict]:
        return self._call("GET", f"/api/storages/{kind}?project={project}") or []

    def add_storage(self, project: int, kind: str, settings: dict) -> None:
        """An import storage (``localfiles`` or ``s3``) once per project: the same settings twice
        are not added again. Label Studio resolves a task's photo URL through it."""
        for s in self.storages(project, kind):
            if all(s.get(k) == v for k, v in settings.items() if k not in ("aws_access_key_id",
                                                                            "aws_secret_access_key",
                                                                            "aws_session_token")):
                return
        self._call("POST", f"/api/storages/{kind}", {"project": project, **settings})

    def annotate(self, task: int, result: list[dict]) -> None:
        """One annotation by the token's user (the simulated annotator of the tests and the bench)."""
        self._call("POST", f"/api/tasks/{task}/annotations", {"result": result})
