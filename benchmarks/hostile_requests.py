"""The one list of hostile requests: ``make soak-serve`` sends them by the thousand
(``benchmarks.soak_serve``) and ``tests/serving/test_serving_hostile.py`` sends each
once. Each kind builds the raw bytes of one HTTP/1.1 request, so that broken heads,
lying lengths and bad chunking reach the server exactly as an attacker or a careless
client sends them.

``KINDS`` maps a kind's name to a ``Kind``: ``make(rng, images) -> bytes`` (``images``
are real JPEG files, or synthetic bins when the shared sample is absent), and, for a kind
that always earns the same answer, that status and words its JSON reason must hold.
Every kind must get an answer, never a 5xx, and any 4xx must carry a JSON reason;
``parser`` kinds are refused by gunicorn's HTTP parser before the app runs, so the tests
send those to each worker class.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass
from typing import Callable

from PIL import Image

from bincounter.serving.contract import MAX_BODY_BYTES, MAX_INSTANCES, MAX_JSON_DEPTH
from devtools.hostile_images import encode, jpeg_bomb, png_declaring



def request(body: bytes = b"", *headers: str | bytes, method: bytes = b"POST",
            path: bytes = b"/invocations", length: bool = True) -> bytes:
    head = [method + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1"]
    head += [h.encode("latin-1") if isinstance(h, str) else h for h in headers]
    if length:
        head.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def jpeg(body: bytes, *headers: str | bytes) -> bytes:
    return request(body, "Content-Type: image/jpeg", *headers)


def as_json(doc, content_type: str = "application/json") -> bytes:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return request(body, f"Content-Type: {content_type}")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def good_jpeg() -> bytes:
    """A valid photo the server counts (synthetic, so the status never depends on the sample)."""
    return _once("good", lambda: encode(Image.new("RGB", (320, 240), (90, 140, 200)), "JPEG", quality=90))


def deep(levels: int) -> bytes:
    return b'{"image": ' + b"[" * levels + b"]" * levels + b"}"


_BOMB = jpeg_bomb()
_PIXEL = json.dumps({"image": b64(encode(Image.new("RGB", (1, 1)), "PNG"))})
_cache: dict[str, bytes] = {}


def _once(name: str, make: Callable[[], bytes]) -> bytes:
    if name not in _cache:
        _cache[name] = make()
    return _cache[name]


def _pixels() -> list[str]:
    """As many one-pixel PNG instances as fit a body of 6 MB (about 57,000)."""
    return [_PIXEL] * ((MAX_BODY_BYTES - 20) // (len(_PIXEL) + 2))


def _pixel_batch() -> bytes:
    return ('{"instances": [' + ", ".join(_pixels()) + "]}").encode()


def _truncated(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randint(1, len(data) - 1)]


def _bit_flipped(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 20)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def _chunked(rng: random.Random, jpeg_bytes: bytes) -> bytes:
    """Broken chunking (a chunk size promising more than is sent is a slow request: soak_serve's)."""
    body = rng.choice([b"zz\r\n" + jpeg_bytes[:64] + b"\r\n0\r\n\r\n",
                       b"-1\r\n" + jpeg_bytes[:64] + b"\r\n0\r\n\r\n",
                       b"5;ext=\x01\r\n" + jpeg_bytes[:5] + b"\r\n0\r\n\r\n",
                       b"5\r\n" + jpeg_bytes[:5] + b"\r\n0\r\nContent-Length: 5\r\n\r\n"])
    return request(body, "Content-Type: image/jpeg", "Transfer-Encoding: chunked", length=False)


Maker = Callable[[random.Random, list[bytes]], bytes]


@dataclass(frozen=True)
class Kind:
    make: Maker
    status: int | None = None  # the answer this kind always earns (None: it varies with the draw)
    words: str = ""            # words the JSON reason must contain (case-insensitive)
    parser: bool = False       # refused by gunicorn's parser, before the app: tested per worker class


def _good(r: random.Random, im: list[bytes]) -> bytes:
    return b64(good_jpeg())


_GOOD_LINE = lambda: json.dumps({"image": b64(good_jpeg())})  # noqa: E731

KINDS: dict[str, Kind] = {
    # broken photos
    "truncated jpeg": Kind(lambda r, im: jpeg(_truncated(r, r.choice(im)))),
    "half a jpeg": Kind(lambda r, im: jpeg(good_jpeg()[: len(good_jpeg()) // 2]), 400, "truncated"),
    "bit-flipped jpeg": Kind(lambda r, im: jpeg(_bit_flipped(r, r.choice(im)))),
    "random bytes as jpeg": Kind(lambda r, im: jpeg(r.randbytes(r.randint(1, 20_000))), 400,
                                 "not a decodable image"),
    "random bytes as png": Kind(lambda r, im: request(r.randbytes(r.randint(1, 20_000)), "Content-Type: image/png")),
    "empty body": Kind(lambda r, im: jpeg(b""), 400, "empty"),
    "png declaring 50000x50000": Kind(lambda r, im: request(png_declaring(50_000, 50_000), "Content-Type: image/png"),
                                      413, "pixels"),
    "jpeg bomb 8000x8000": Kind(lambda r, im: jpeg(_BOMB), 413, "8000x8000 = 64000000 pixels, limit is 40000000"),
    "body over 6 MB": Kind(lambda r, im: jpeg(b"\xff" * (MAX_BODY_BYTES + r.randint(1, 1000))), 413,
                           str(MAX_BODY_BYTES)),
    # broken JSON and JSON lines
    "bad base64": Kind(lambda r, im: as_json({"image": "%%" + b64(r.choice(im))[:200] + "*!"}), 400, "base64"),
    "broken json": Kind(lambda r, im: as_json(b'{"image": "' + b64(r.choice(im))[:100].encode()), 400, "JSON"),
    "json without image": Kind(lambda r, im: as_json({"picture": "abc"}), 400, "image"),
    "json nested deep": Kind(lambda r, im: as_json(b"[" * r.randint(MAX_JSON_DEPTH + 1, 500_000)), 400,
                             "levels deep"),
    "json one level too deep": Kind(lambda r, im: as_json(deep(MAX_JSON_DEPTH)), 400, "levels deep"),
    "json wrong types": Kind(lambda r, im: as_json(r.choice([
        {"image": 12345}, {"image": None}, {"instances": {"image": "x"}}, {"instances": []}, [1, 2, 3],
        {"image": b64(r.choice(im)), "expected_quantity": r.choice(["3.5", -1, 2.5, True, [3], {"n": 3}])},
        "just a string", {"instances": ["not an object", 7]}]))),
    "json 5000-digit number": Kind(lambda r, im: as_json(b'{"image": "", "expected_quantity": 9' + b"9" * 5000
                                                         + b"}"), 400, "too many digits"),
    "json batch with one bad image": Kind(lambda r, im: as_json(
        {"instances": [{"image": _good(r, im)}, {"image": b64(b"junk")}]}), 400, "instance 1"),
    "batch of 100 real images": Kind(lambda r, im: as_json({"instances": [{"image": b64(r.choice(im))}
                                                                          for _ in range(100)]})),
    "batch of 200 real images": Kind(lambda r, im: as_json({"instances": [{"image": b64(r.choice(im))}
                                                                          for _ in range(200)]}),
                                     413, f"at most {MAX_INSTANCES}"),
    "one instance over the limit": Kind(lambda r, im: as_json({"instances": [{"image": _good(r, im)}]
                                                               * (MAX_INSTANCES + 1)}), 413, f"at most {MAX_INSTANCES}"),
    "6 MB of one-pixel instances": Kind(lambda r, im: as_json(_once("pixels", _pixel_batch)), 413,
                                        f"at most {MAX_INSTANCES}"),
    "6 MB of one-pixel jsonlines": Kind(lambda r, im: as_json(_once("pixel-lines", lambda: "\n".join(_pixels())
                                                                    .encode()), "application/jsonlines"),
                                        413, "lines; at most"),
    "jsonlines with bad lines": Kind(lambda r, im: as_json(
        (json.dumps({"image": b64(r.choice(im))}) + "\n{oops\n" + "[" * 1000).encode(), "application/jsonlines"),
        400, "line 2"),
    "jsonlines line nested deep": Kind(lambda r, im: as_json((_GOOD_LINE() + "\n").encode() + deep(5000),
                                                             "application/jsonlines"), 400, "line 2 nests"),
    # broken heads: most are refused by gunicorn's parser before the app runs
    "control character in Content-Type": Kind(lambda r, im: jpeg(r.choice(im)).replace(
        b"image/jpeg", b"image/jpeg" + bytes([r.choice([0, 1, 8, 11, 27, 127])]), 1), parser=True),
    "control character \\x01 in Content-Type": Kind(lambda r, im: jpeg(good_jpeg()).replace(
        b"image/jpeg", b"image/jpeg\x01", 1), 400, "CONTENT-TYPE", parser=True),
    "control character in Accept": Kind(lambda r, im: jpeg(r.choice(im), b"Accept: application/json"
                                                           + bytes([r.choice([1, 12, 31, 127])])),
                                        400, "ACCEPT", parser=True),
    "DEL in the custom attributes": Kind(lambda r, im: jpeg(good_jpeg(), b"X-Amzn-SageMaker-Custom-Attributes: "
                                                            b"expected_quantity=3\x7f"),
                                         400, "X-AMZN-SAGEMAKER-CUSTOM-ATTRIBUTES", parser=True),
    "bad custom attributes": Kind(lambda r, im: jpeg(r.choice(im), "X-Amzn-SageMaker-Custom-Attributes: "
                                                     + r.choice(["expected_quantity=\u00b2", "expected_quantity=-1",
                                                                 "expected_quantity=99",
                                                                 "expected_quantity=" + "9" * 50,
                                                                 "expected_quantity=three", "=" * 1000]))),
    "quantity in superscript digits": Kind(lambda r, im: jpeg(good_jpeg(), "X-Amzn-SageMaker-Custom-Attributes: "
                                                              "expected_quantity=\u00b2"),
                                           400, "expected_quantity", parser=True),
    "unsupported Accept": Kind(lambda r, im: jpeg(r.choice(im), "Accept: text/html")),
    "unsupported Content-Type": Kind(lambda r, im: request(r.choice(im), "Content-Type: text/csv")),
    "wrong method": Kind(lambda r, im: request(b"", method=r.choice([b"PUT", b"DELETE", b"PATCH"]),
                                               path=r.choice([b"/invocations", b"/ping"]))),
    "unknown path": Kind(lambda r, im: request(b"", method=b"GET", path=b"/" + r.choice(
        [b"admin", b"..%2f..%2fetc", b"invocations/x"]))),
    "bad Content-Length": Kind(lambda r, im: request(b"abc", "Content-Type: image/jpeg", r.choice(
        ["Content-Length: 12abc", "Content-Length: -5", "Content-Length: 3, 4"]), length=False), parser=True),
    "Content-Length not a number": Kind(lambda r, im: b"POST /invocations HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n",
                                        400, "CONTENT-LENGTH", parser=True),
    "unknown Transfer-Encoding": Kind(lambda r, im: request(b"", "Transfer-Encoding: " + r.choice(["bogus", "br"])),
                                      parser=True),
    "Transfer-Encoding bogus (gunicorn: 501)": Kind(lambda r, im: b"POST /invocations HTTP/1.1\r\n"
                                                    b"Transfer-Encoding: bogus\r\n\r\n", 400, "transfer coding",
                                                    parser=True),
    "malformed chunked body": Kind(lambda r, im: _chunked(r, r.choice(im)), parser=True),
    "chunked body with a Content-Length trailer": Kind(lambda r, im: (
        b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Type: image/jpeg\r\n\r\n"
        b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n"), 400, "CONTENT-LENGTH", parser=True),
    "200 headers": Kind(lambda r, im: jpeg(r.choice(im), *[f"X-Pad-{i}: {i}" for i in range(200)]), 431, "header",
                        parser=True),
    "10 KB URL": Kind(lambda r, im: request(b"", method=b"GET", path=b"/ping?" + b"a" * 10_000)),
    "garbage request line": Kind(lambda r, im: r.choice([b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                                                         b"GET\r\n\r\n", b"G\x00T / HTTP/1.1\r\n\r\n",
                                                         b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]), parser=True),
    "SCRIPT_NAME not prefixing the path (gunicorn: 500)": Kind(lambda r, im: jpeg(good_jpeg(),
                                                                                  "SCRIPT_NAME: /elsewhere"),
                                                               400, "SCRIPT_NAME", parser=True),
}
