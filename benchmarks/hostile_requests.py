"""The hostile requests of the serving soak (``benchmarks.soak_serve``): each kind builds the
raw bytes of one HTTP/1.1 request, so that broken heads, lying lengths and bad
chunking reach the server exactly as an attacker or a careless client sends them.

``KINDS`` maps a kind's name to ``make(rng, images) -> bytes``; ``images`` are
real JPEG files (or synthetic bins when the shared sample is absent).
"""

from __future__ import annotations

import base64
import json
import random
from typing import Callable

from PIL import Image

from bincounter.serving.contract import MAX_BODY_BYTES
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


_BOMB = jpeg_bomb()
_PIXEL = json.dumps({"image": b64(encode(Image.new("RGB", (1, 1)), "PNG"))})
_cache: dict[str, bytes] = {}


def _once(name: str, make: Callable[[], bytes]) -> bytes:
    if name not in _cache:
        _cache[name] = make()
    return _cache[name]


def _pixel_batch() -> bytes:
    n = (MAX_BODY_BYTES - 20) // (len(_PIXEL) + 2)
    return ('{"instances": [' + ", ".join([_PIXEL] * n) + "]}").encode()


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

KINDS: dict[str, Maker] = {
    "truncated jpeg": lambda r, im: jpeg(_truncated(r, r.choice(im))),
    "bit-flipped jpeg": lambda r, im: jpeg(_bit_flipped(r, r.choice(im))),
    "random bytes as jpeg": lambda r, im: jpeg(r.randbytes(r.randint(1, 20_000))),
    "random bytes as png": lambda r, im: request(r.randbytes(r.randint(1, 20_000)), "Content-Type: image/png"),
    "empty body": lambda r, im: jpeg(b""),
    "png declaring 50000x50000": lambda r, im: request(png_declaring(50_000, 50_000), "Content-Type: image/png"),
    "jpeg bomb 8000x8000": lambda r, im: jpeg(_BOMB),
    "body over 6 MB": lambda r, im: jpeg(b"\xff" * (MAX_BODY_BYTES + r.randint(1, 1000))),
    "bad base64": lambda r, im: as_json({"image": "%%" + b64(r.choice(im))[:200] + "*!"}),
    "broken json": lambda r, im: as_json(b'{"image": "' + b64(r.choice(im))[:100].encode()),
    "json nested deep": lambda r, im: as_json(b"[" * r.randint(33, 500_000)),
    "json wrong types": lambda r, im: as_json(r.choice([
        {"image": 12345}, {"image": None}, {"instances": {"image": "x"}}, {"instances": []}, [1, 2, 3],
        {"image": b64(r.choice(im)), "expected_quantity": r.choice(["3.5", -1, 2.5, True, [3], {"n": 3}])},
        "just a string", {"instances": ["not an object", 7]}])),
    "json 5000-digit number": lambda r, im: as_json(b'{"image": "", "expected_quantity": 9' + b"9" * 5000 + b"}"),
    "batch of 100 real images": lambda r, im: as_json({"instances": [{"image": b64(r.choice(im))}
                                                                     for _ in range(100)]}),
    "batch of 200 real images": lambda r, im: as_json({"instances": [{"image": b64(r.choice(im))}
                                                                     for _ in range(200)]}),
    "6 MB of one-pixel instances": lambda r, im: as_json(_once("pixels", _pixel_batch)),
    "jsonlines with bad lines": lambda r, im: as_json(
        (json.dumps({"image": b64(r.choice(im))}) + "\n{oops\n" + "[" * 1000).encode(), "application/jsonlines"),
    "control character in Content-Type": lambda r, im: jpeg(r.choice(im)).replace(
        b"image/jpeg", b"image/jpeg" + bytes([r.choice([0, 1, 8, 11, 27, 127])]), 1),
    "control character in Accept": lambda r, im: jpeg(r.choice(im), b"Accept: application/json"
                                                      + bytes([r.choice([1, 12, 31, 127])])),
    "bad custom attributes": lambda r, im: jpeg(r.choice(im), "X-Amzn-SageMaker-Custom-Attributes: "
                                                + r.choice(["expected_quantity=\u00b2", "expected_quantity=-1",
                                                            "expected_quantity=99", "expected_quantity=" + "9" * 50,
                                                            "expected_quantity=three", "=" * 1000])),
    "unsupported Accept": lambda r, im: jpeg(r.choice(im), "Accept: text/html"),
    "unsupported Content-Type": lambda r, im: request(r.choice(im), "Content-Type: text/csv"),
    "wrong method": lambda r, im: request(b"", method=r.choice([b"PUT", b"DELETE", b"PATCH"]),
                                          path=r.choice([b"/invocations", b"/ping"])),
    "unknown path": lambda r, im: request(b"", method=b"GET", path=b"/" + r.choice([b"admin", b"..%2f..%2fetc",
                                                                                   b"invocations/x"])),
    "bad Content-Length": lambda r, im: request(b"abc", "Content-Type: image/jpeg", r.choice(
        ["Content-Length: 12abc", "Content-Length: -5", "Content-Length: 3, 4"]), length=False),
    "unknown Transfer-Encoding": lambda r, im: request(b"", "Transfer-Encoding: " + r.choice(["bogus", "br"])),
    "malformed chunked body": lambda r, im: _chunked(r, r.choice(im)),
    "200 headers": lambda r, im: jpeg(r.choice(im), *[f"X-Pad-{i}: {i}" for i in range(200)]),
    "10 KB URL": lambda r, im: request(b"", method=b"GET", path=b"/ping?" + b"a" * 10_000),
    "garbage request line": lambda r, im: r.choice([b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                                                    b"GET\r\n\r\n", b"G\x00T / HTTP/1.1\r\n\r\n",
                                                    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]),
    "SCRIPT_NAME header": lambda r, im: jpeg(r.choice(im), "SCRIPT_NAME: /elsewhere"),
}
