"""The pre-signed document URLs: S3-style answers, streamed bodies and the download faults."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from xml.sax.saxutils import escape

from werkzeug.wrappers import Request, Response

from spreports.simulator.clock import iso
from spreports.simulator.content import take
from spreports.simulator.http import Core, UrlGrant

CHUNK = 256 * 1024


def s3_error(code: str, message: str, extra: dict[str, str], status: int = 403) -> Response:
    """An S3-style XML error body."""
    request_id = uuid.uuid4().hex[:16].upper()
    fields = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in {"Code": code, "Message": message, **extra}.items())
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{fields}<RequestId>{request_id}</RequestId><HostId>{uuid.uuid4().hex}</HostId></Error>'
    return Response(body, status=status, content_type="application/xml", headers={"x-amz-request-id": request_id})


def download(core: Core, request: Request, key: str) -> tuple[Response, str | None]:
    """Answer a GET on a pre-signed URL: (response, seller id for the log)."""
    signature = request.args.get("X-Amz-Signature", "")
    grant = core.urls.get(signature)
    if grant is None or grant.document_id != key:
        return s3_error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
            {},
        ), None
    now = core.clock.seconds()
    if now > grant.expires_at:
        extra = {
            "X-Amz-Expires": str(round(core.clock.real_seconds(core.config.url_lifetime))),
            "Expires": iso(core.clock.at(grant.expires_at)),
            "ServerTime": iso(core.clock.now()),
        }
        return s3_error("AccessDenied", "Request has expired", extra), grant.seller_id
    document = core.world.documents[grant.document_id]
    body = document.body
    length = body.gzip_length if grant.serve_gzip else body.length
    chunks = body.iter_gzip() if grant.serve_gzip else body.iter_plain()
    if grant.serve_gzip and core.faults.take("truncated_gzip"):
        # Cut inside the deflate data or the trailer: the HTTP answer is whole, the gzip member is not.
        length = max(10, length - max(24, length // 10))
        chunks = take(chunks, length)
    stream = _stream(core, request, grant, chunks, length)
    response = Response(stream, status=200, direct_passthrough=True)
    response.headers["Content-Type"] = body.content_type
    response.headers["Content-Length"] = str(length)
    response.headers["Content-Encoding"] = "gzip" if grant.content_encoding_gzip else "identity"
    response.headers["ETag"] = f'"{uuid.uuid5(uuid.NAMESPACE_URL, grant.document_id).hex}"'
    response.headers["x-amz-request-id"] = uuid.uuid4().hex[:16].upper()
    response.headers["Accept-Ranges"] = "bytes"
    return response, grant.seller_id


def _stream(core: Core, request: Request, grant: UrlGrant, chunks: Iterator[bytes], length: int) -> Iterator[bytes]:
    drop_at = length // 2 if core.faults.take("dropped_connections") else None
    stall = core.faults.slow_seconds if core.faults.take("slow_responses") else 0.0
    return _body(chunks, drop_at, stall, core, request.environ.get("werkzeug.socket"))


def _body(
    chunks: Iterator[bytes], drop_at: int | None, stall: float, core: Core, sock: socket.socket | None
) -> Iterator[bytes]:
    sent = 0
    for chunk in chunks:
        for start in range(0, len(chunk), CHUNK):
            piece = chunk[start : start + CHUNK] if len(chunk) > CHUNK else chunk
            if drop_at is not None and sent + len(piece) >= drop_at:
                yield piece[: drop_at - sent]
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
                # werkzeug treats a ConnectionError as a dropped connection and closes quietly.
                raise ConnectionResetError("simulated dropped connection")
            yield piece
            sent += len(piece)
            if stall:
                core.sleep(stall)
                stall = 0.0
            if len(chunk) <= CHUNK:
                break
