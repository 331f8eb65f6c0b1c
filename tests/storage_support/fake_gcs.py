"""A protocol fake of GCS's XML API, for the GCS backend's wiring only (NOT a real server).

No GCS emulator available here serves obstore's GCS calls (docs/storage.md): fake-gcs-server
has no XML ``PUT`` and gcp-storage-emulator ignores ``x-goog-if-generation-match``. This fake
implements just what obstore uses, as Google documents it: ``PUT /BUCKET/OBJECT`` with
``x-goog-if-generation-match`` (0: must not exist; N: the live generation must be N; else 412),
``GET``/``HEAD`` with ``ETag``, ``x-goog-generation``, ``Content-Type`` and ``Cache-Control``,
``GET /BUCKET?list-type=2&prefix=`` and ``POST /storage/v1/b`` to create a bucket. Objects
persist in a directory, so a restart keeps them. Anonymous GETs are allowed (a public bucket);
writes need an ``Authorization`` header. It proves what obstore sends and how our backend reads
the answers; it proves nothing about Google's servers.

Run: ``python -m tests.storage_support.fake_gcs --port PORT --dir DIR``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

_LOCK = threading.Lock()


def _error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    root: Path

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _split(self) -> tuple[str, str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        bucket, _, key = parts.path.lstrip("/").partition("/")
        return unquote(bucket), unquote(key), parse_qs(parts.query)

    def _paths(self, bucket: str, key: str) -> tuple[Path, Path]:
        name = quote(key, safe="")
        return self.root / bucket / name, self.root / bucket / f"{name}.meta"

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/storage/v1/b":
            self._send(404, _error("NotFound", "no such route"))
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        (self.root / json.loads(body)["name"]).mkdir(parents=True, exist_ok=True)
        self._send(200, b"{}", {"Content-Type": "application/json"})

    def do_PUT(self) -> None:
        bucket, key, _ = self._split()
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "Authorization" not in self.headers:
            self._send(403, _error("AccessDenied", "Anonymous caller does not have access."))
            return
        if not (self.root / bucket).is_dir():
            self._send(404, _error("NoSuchBucket", "The specified bucket does not exist."))
            return
        path, meta_path = self._paths(bucket, key)
        condition = self.headers.get("x-goog-if-generation-match")
        with _LOCK:
            current = json.loads(meta_path.read_text()) if meta_path.exists() else None
            live = str(current["generation"]) if current else "0"
            if condition is not None and condition != live:
                self._send(412, _error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold."))  # fmt: skip
                return
            generation = max(time.time_ns() // 1000, int(live) + 1)
            meta = {
                "generation": generation,
                "etag": f'"{hashlib.md5(data).hexdigest()}"',  # GCS's own ETag for simple uploads
                "content_type": self.headers.get("Content-Type", "application/octet-stream"),
                "cache_control": self.headers.get("Cache-Control"),
                "updated": time.time(),
            }
            path.write_bytes(data)
            meta_path.write_text(json.dumps(meta))
        self._send(200, b"", {"ETag": meta["etag"], "x-goog-generation": str(generation)})

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        bucket, key, query = self._split()
        if not (self.root / bucket).is_dir():
            self._send(404, _error("NoSuchBucket", "The specified bucket does not exist."))
            return
        if not key:
            self._list(bucket, query.get("prefix", [""])[0])
            return
        path, meta_path = self._paths(bucket, key)
        with _LOCK:
            if not meta_path.exists():
                self._send(404, _error("NoSuchKey", "The specified key does not exist."))
                return
            meta, data = json.loads(meta_path.read_text()), path.read_bytes()
        headers = {
            "ETag": meta["etag"],
            "x-goog-generation": str(meta["generation"]),
            "Last-Modified": formatdate(meta["updated"], usegmt=True),
            "Content-Type": meta["content_type"],
        }
        if meta["cache_control"]:
            headers["Cache-Control"] = meta["cache_control"]
        self._send(200, data, headers)

    def _list(self, bucket: str, prefix: str) -> None:
        entries = []
        for meta_path in sorted((self.root / bucket).glob("*.meta")):
            key = unquote(meta_path.name[: -len(".meta")])
            if key.startswith(prefix):
                meta = json.loads(meta_path.read_text())
                size = (meta_path.parent / meta_path.name[: -len(".meta")]).stat().st_size
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(meta["updated"]))
                entries.append(
                    f"<Contents><Key>{escape(key)}</Key><LastModified>{stamp}</LastModified>"
                    f"<ETag>{escape(meta['etag'])}</ETag><Size>{size}</Size></Contents>"
                )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{len(entries)}</KeyCount><IsTruncated>false</IsTruncated>"
            + "".join(entries)
            + "</ListBucketResult>"
        ).encode()
        self._send(200, body, {"Content-Type": "application/xml"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    Handler.root = args.dir
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
