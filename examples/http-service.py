#!/usr/bin/env python3
"""A service for runhook's `http` processor, in Python with the standard library only.

runhook POSTs each run here as {"run": {...}, "input": ..., "attempt": n}, signed with Standard Webhooks
headers. This service checks the signature, then streams its answer back as NDJSON, one JSON object a
line, while it works:

  a Letta message      {"message_type": "assistant_message", "id": "message-...", "content": "Hel"}
  a step (model call)  {"step": {"model": ..., "prompt_tokens": ..., "completion_tokens": ..., ...}}
  usage                {"usage": {"prompt_tokens": ..., "completion_tokens": ..., "total_tokens": ...}}
  and, last            {"stop_reason": "end_turn"}

Messages that share an `id` are chunks of one message (runhook joins them). A 4xx answer fails the run
at once; a 5xx, a dropped connection, or a stream that ends without its stop reason is tried again (the
same run, `attempt` + 1, from a clean transcript). Replace `work()` with your agent.

  RUNHOOK_HTTP_SECRET=whsec_... python3 examples/http-service.py      # listens on 127.0.0.1:8300
  RUNHOOK_PROCESSOR=http RUNHOOK_HTTP_URL=http://127.0.0.1:8300/run RUNHOOK_HTTP_SECRET=whsec_... npm start
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ.get("RUNHOOK_HTTP_SECRET") or os.environ.get("RUNHOOK_WEBHOOK_SECRET")
PORT = int(os.environ.get("PORT", "8300"))
TOLERANCE_SEC = 5 * 60  # Standard Webhooks: refuse requests signed more than 5 minutes away from now


def verify(headers, body: bytes) -> bool:
    """The Standard Webhooks check: HMAC-SHA256 of "id.timestamp.body" with the secret's base64 bytes."""
    if not SECRET:
        return True  # runhook sends unsigned requests when no secret is configured
    msg_id, ts, sigs = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
    if not (msg_id and ts and sigs) or not ts.isdigit() or abs(time.time() - int(ts)) > TOLERANCE_SEC:
        return False
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    # The header may carry several signatures ("v1,<sig> v1,<sig>") while a secret is being rotated.
    return any(s.startswith("v1,") and hmac.compare_digest(s[3:], expected) for s in sigs.split(" "))


def user_text(inp) -> str:
    """input.text, or the last user message of Letta's `messages` (content a string or text parts)."""
    if isinstance(inp, str):
        return inp
    if not isinstance(inp, dict):
        return ""
    if isinstance(inp.get("text"), str):
        return inp["text"]
    for m in reversed(inp.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            return c if isinstance(c, str) else "".join(p.get("text", "") for p in c or [] if isinstance(p, dict))
    return ""


def work(run, inp, attempt):
    """Your agent. Yields the objects to stream; here: it answers in capitals, a word at a time."""
    start_ns = time.time_ns()
    text = user_text(inp)
    yield {"message_type": "reasoning_message", "id": f"message-{uuid.uuid4()}", "reasoning": f"Shouting back {len(text)} characters."}
    words = text.upper().split() or ["(NOTHING", "TO", "SAY)"]
    answer_id = f"message-{uuid.uuid4()}"  # every chunk of the answer shares one id
    for i, w in enumerate(words):
        time.sleep(float(inp.get("token_ms", 20)) / 1000 if isinstance(inp, dict) else 0.02)
        yield {"message_type": "assistant_message", "id": answer_id, "content": w if i == 0 else " " + w}
    took = time.time_ns() - start_ns
    prompt, completion = len(text.split()), len(words)
    yield {"step": {"model": "shout-1", "provider_name": "examples/http-service.py", "prompt_tokens": prompt,
                    "completion_tokens": completion, "stop_reason": "end_turn", "step_start_ns": start_ns,
                    "llm_request_start_ns": start_ns, "llm_request_ns": took, "step_ns": took}}
    yield {"usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}
    yield {"stop_reason": "end_turn"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked answers on a connection runhook may keep open

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if not verify(self.headers, body):
            return self.answer(401, {"error": "bad signature"})
        try:
            req = json.loads(body)
            run, inp, attempt = req["run"], req.get("input"), req["attempt"]
        except (ValueError, KeyError):
            return self.answer(422, {"error": "expected {run, input, attempt}"})
        self.send_response(200)
        self.send_header("content-type", "application/x-ndjson")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            for obj in work(run, inp, attempt):
                line = json.dumps(obj).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))  # one chunk a line: sent at once
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the run was cancelled: runhook closed the request

    def answer(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        sys.stderr.write("http-service: " + fmt % args + "\n")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"http-service listening on http://127.0.0.1:{server.server_address[1]}/run", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
