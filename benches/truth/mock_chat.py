#!/usr/bin/env python3
"""Scriptable mock of OpenAI chat completions (streamed SSE, stdlib only) for OpenCode and Aider,
writing the same ground-truth timeline as mock_anthropic.py and mock_openai.py:

  {"ev": "request_received", "t": ..., "turn": 0, "step": 0, "tool_result": false}
  {"ev": "stream_start",     "t": ..., "turn": 0, "step": 0}
  {"ev": "stream_end",       "t": ..., "turn": 0, "step": 0, "stop_reason": "tool_use", "tool": "bash",
                             "needs_permission": true, "last_step": false}

Scenario JSON: the same shape as for the other mocks. A "tool_use" step becomes one streamed
`tool_calls` delta (function name = step "name", arguments = json.dumps(step "input"), "{repo}"
replaced), after the step's "text" if any; a "text" step streams its text and ends the turn.
Aider has no tools: its questions come from the text of a reply (an edit, a shell command). A
"text" step with "needs_permission": true is logged as one that needs the user (stop_reason
"tool_use", like a tool call waiting for approval), so the harness waits for the question and
answers it; with "ends_turn" on the step, answering it ends the turn (Aider applies the edit and is
back at its prompt without asking the model again). Optional step keys: "duration" (s the deltas
are spread over), "ttft" (s before the first chunk), "silent" (s the stream stays open with nothing
sent after the first chunk).

Which (turn, step) a request is for: the turn is the scenario turn whose prompt is in the last user
message that has one, the step the number of assistant messages with tool calls after it. Requests
whose system prompt marks them as side work (OpenCode's title, Aider's commit message) or that
match no prompt are answered with a short text and logged as "aux_request". GET /v1/models lists
one model, "m".

Usage: mock_chat.py --scenario S.json --log timeline.jsonl [--port 0] [--port-file F] [--repo DIR]
                    [--dump-requests DIR]
"""
import argparse
import json
import os
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
SIDE = ("title generator", "commit message", "summarize", "summary of")


class Timeline:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)

    def log(self, ev, **kw):
        rec = {"ev": ev, "t": time.time()}
        rec.update(kw)
        with LOCK:
            self.f.write(json.dumps(rec) + "\n")
            self.f.flush()


def text_of(content):
    if isinstance(content, str):
        return content
    return " ".join(p.get("text") or "" for p in content or [] if isinstance(p, dict))


def locate(req, prompts):
    """(turn, step, carries_tool_output) or None when the request is side work or matches no prompt."""
    msgs = [m for m in req.get("messages") or [] if isinstance(m, dict)]
    system = " ".join(text_of(m.get("content")) for m in msgs if m.get("role") == "system").lower()
    if any(s in system for s in SIDE) and not req.get("tools"):
        return None
    anchor = turn = None
    for i, m in enumerate(msgs):
        if m.get("role") != "user":
            continue
        txt = text_of(m.get("content"))
        for k, p in enumerate(prompts):
            if p.strip() and p.strip() in txt:
                anchor, turn = i, k
    if anchor is None:
        return None
    step = sum(1 for m in msgs[anchor + 1:] if m.get("role") == "assistant" and m.get("tool_calls"))
    carries = bool(msgs) and msgs[-1].get("role") == "tool"
    return turn, step, carries


def substitute(obj, repo):
    if isinstance(obj, str):
        return obj.replace("{repo}", repo)
    if isinstance(obj, list):
        return [substitute(x, repo) for x in obj]
    if isinstance(obj, dict):
        return {k: substitute(v, repo) for k, v in obj.items()}
    return obj


def pieces(s, n):
    n = max(1, min(n, len(s)))
    size = -(-len(s) // n)
    return [s[i:i + size] for i in range(0, len(s), size)] or [""]


class ClientGone(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-chat/1"

    def log_message(self, *a):
        pass

    def send_json(self, obj, code=200):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.server.timeline.log("get", path=self.path)
        return self.send_json({"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "mock"}]})

    def do_POST(self):
        n = int(self.headers.get("content-length", 0) or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            req = {}
        srv = self.server
        if srv.dump_dir:
            with LOCK:
                srv.dump_n += 1
                k = srv.dump_n
            with open(os.path.join(srv.dump_dir, f"req{k:03d}.json"), "w") as f:
                json.dump({"path": self.path, "body": req}, f, indent=1)
        if not self.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
            srv.timeline.log("other_post", path=self.path)
            return self.send_json({})
        turns = srv.scenario["turns"]
        loc = locate(req, [t["prompt"] for t in turns])
        if loc is None:
            srv.timeline.log("aux_request", stream=bool(req.get("stream")), n_messages=len(req.get("messages") or []))
            return self.reply(req, {"type": "text", "text": "Scripted session", "duration": 0.0, "ttft": 0.0}, None)
        turn, step, carries = loc
        meta = {"turn": turn, "step": step}
        srv.timeline.log("request_received", tool_result=carries, **meta)
        if step >= len(turns[turn]["steps"]):
            srv.timeline.log("off_script", **meta)
            spec = {"type": "text", "text": "(mock: off script)", "duration": 0.2}
        else:
            spec = turns[turn]["steps"][step]
        last_step = step >= len(turns[turn]["steps"]) - 1
        is_tool = spec.get("type") == "tool_use"
        input_kind = spec.get("needs_input") or ("permission" if spec.get("needs_permission") else None)
        asks = bool(input_kind)
        meta.update(stop_reason="tool_use" if is_tool or asks else "end_turn",
                    tool=spec.get("name") if is_tool else ("reply" if asks else None),
                    needs_permission=asks if (is_tool or asks) else False,
                    input_kind=input_kind if (is_tool or asks) else None, last_step=last_step)
        return self.reply(req, spec, meta)

    def chunk(self, cid, delta, finish=None, usage=None):
        obj = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage:
            obj["usage"] = usage
        self.wfile.write(f"data: {json.dumps(obj)}\n\n".encode())
        self.wfile.flush()

    def hold(self, seconds):
        """Keep the stream open sending nothing; ClientGone as soon as the client hangs up."""
        end = time.time() + seconds
        while True:
            left = end - time.time()
            if left <= 0:
                return
            r, _, _ = select.select([self.connection], [], [], min(left, 0.2))
            if r:
                try:
                    data = self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data == b"":
                    raise ClientGone()
                time.sleep(min(left, 0.2))

    def reply(self, req, spec, meta):
        tl = self.server.timeline
        srv = self.server
        ttft = float(spec.get("ttft", srv.default_ttft))
        duration = float(spec.get("duration", 1.0))
        is_tool = spec.get("type") == "tool_use"
        if not req.get("stream"):
            msg = {"role": "assistant", "content": spec.get("text", "")}
            return self.send_json({"id": "chatcmpl-x", "object": "chat.completion", "created": int(time.time()),
                                   "model": "m", "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
                                   "usage": {"prompt_tokens": 100, "completion_tokens": 25, "total_tokens": 125}})
        if ttft > 0:
            time.sleep(ttft)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        cid = f"chatcmpl-{int(time.time() * 1e6)}"
        try:
            self.chunk(cid, {"role": "assistant", "content": ""})
            if meta:
                tl.log("stream_start", turn=meta["turn"], step=meta["step"], streamed=True)
            silent = float(spec.get("silent", 0.0))
            if silent > 0:
                self.hold(silent)
            text = spec.get("text", "")
            args = json.dumps(substitute(spec.get("input", {}), srv.repo)) if is_tool else ""
            parts = [("text", p) for p in (pieces(text, max(1, int(duration * 10))) if text else [])]
            parts += [("args", p) for p in (pieces(args, max(1, int(duration * 5))) if is_tool else [])]
            gap = duration / max(1, len(parts))
            t0 = time.time()
            call_id = f"call_t{meta['turn']}s{meta['step']}_{int(t0 * 1000) % 1000000}" if meta else "call_x"
            first_arg = True
            for k, (kind, p) in enumerate(parts):
                if kind == "text":
                    self.chunk(cid, {"content": p})
                else:
                    call = {"index": 0, "function": {"arguments": p}}
                    if first_arg:
                        call.update(id=call_id, type="function")
                        call["function"]["name"] = spec["name"]
                        first_arg = False
                    self.chunk(cid, {"tool_calls": [call]})
                wait = t0 + (k + 1) * gap - time.time()
                if wait > 0:
                    time.sleep(wait)
            usage = {"prompt_tokens": 100, "completion_tokens": 25, "total_tokens": 125}
            self.chunk(cid, {}, "tool_calls" if is_tool else "stop", usage)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ClientGone) as e:
            if meta:
                tl.log("stream_aborted", error=type(e).__name__, **meta)
            return
        if meta:
            tl.log("stream_end", streamed=True, **meta)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--repo", default=os.getcwd())
    ap.add_argument("--ttft", type=float, default=0.25)
    ap.add_argument("--dump-requests", help="directory to save every request body (debugging)")
    a = ap.parse_args()
    with open(a.scenario) as f:
        scenario = json.load(f)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.scenario = scenario
    srv.repo = a.repo
    srv.default_ttft = a.ttft
    srv.timeline = Timeline(a.log)
    srv.dump_dir = a.dump_requests
    srv.dump_n = 0
    if a.dump_requests:
        os.makedirs(a.dump_requests, exist_ok=True)
    port = srv.server_address[1]
    srv.timeline.log("mock_listening", port=port, scenario=scenario.get("name"))
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, a.port_file)
    print(port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
