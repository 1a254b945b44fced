#!/usr/bin/env python3
"""Scriptable mock of the Gemini API (generativelanguage v1beta, streaming SSE, stdlib only) for
Gemini CLI, writing the same ground-truth timeline as mock_anthropic.py and mock_openai.py:

  {"ev": "request_received", "t": ..., "turn": 0, "step": 0, "tool_result": false, ...}
  {"ev": "stream_start",     "t": ..., "turn": 0, "step": 0}
  {"ev": "stream_end",       "t": ..., "turn": 0, "step": 0, "stop_reason": "tool_use",
                             "tool": "run_shell_command", "needs_permission": true, "last_step": false}

Scenario JSON: the same shape as for mock_anthropic.py. A "tool_use" step becomes one `functionCall`
part (name = step "name", args = step "input", "{repo}" replaced), after the step's "text" when it
has one; a "text" step streams its text in parts and ends the turn. Optional step keys: "duration"
(s the text is spread over), "ttft" (s before the first chunk), "silent" (s the stream stays open with
nothing sent, like a long thinking phase).

One streamed response (POST /v1beta/models/M:streamGenerateContent?alt=sse) is a series of
`data: {"candidates": [{"content": {"role": "model", "parts": [...]}}], ...}` events, the last with
"finishReason": "STOP".

Which (turn, step) a request is for comes from the request: the turn is the scenario turn whose
prompt equals the text of the last matching user part in `contents`, the step the number of
`functionCall` parts after it. Requests that match no prompt or offer no tools (Gemini CLI's model
routing, next-speaker checks, titles; most are plain generateContent) are answered at once with JSON
that reads as "the user speaks next" / "the flash model" and logged as "aux_request".

Usage: mock_gemini.py --scenario S.json --log timeline.jsonl [--port 0] [--port-file F] [--repo DIR]
"""
import argparse
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mock_openai import ClientGone, Timeline, chunks, substitute  # noqa: E402
import mock_openai  # noqa: E402

USAGE = {"promptTokenCount": 100, "candidatesTokenCount": 25, "totalTokenCount": 125}
AUX = json.dumps({"reasoning": "mock", "next_speaker": "user", "model_choice": "flash"})


def candidate(parts, finish=None):
    c = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        c["finishReason"] = finish
    return {"candidates": [c], "usageMetadata": USAGE, "modelVersion": "gemini-mock"}


def locate(req, prompts):
    """(turn, step, carries_tool_result) or None when the request matches no scenario prompt."""
    contents = req.get("contents") or []
    anchor = turn = None
    for i, c in enumerate(contents):
        if not isinstance(c, dict) or c.get("role") != "user":
            continue
        for p in c.get("parts") or []:
            s = (p.get("text") or "").strip() if isinstance(p, dict) else ""
            for k, want in enumerate(prompts):
                if s and s == want.strip():
                    anchor, turn = i, k
    if anchor is None:
        return None
    step = sum(1 for c in contents[anchor + 1:] if isinstance(c, dict)
               for p in c.get("parts") or [] if isinstance(p, dict) and "functionCall" in p)
    last = contents[-1] if contents else {}
    carries = any(isinstance(p, dict) and "functionResponse" in p for p in last.get("parts") or [])
    return turn, step, carries


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-gemini/1"

    def log_message(self, *a):
        pass

    send_json = mock_openai.Handler.send_json
    hold = mock_openai.Handler.hold

    def do_GET(self):
        self.server.timeline.log("get", path=self.path)
        return self.send_json({"models": []})

    def do_POST(self):
        n = int(self.headers.get("content-length", 0) or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            req = {}
        srv = self.server
        path = self.path.split("?")[0]
        if path.endswith(":countTokens"):
            return self.send_json({"totalTokens": 100})
        streamed = path.endswith(":streamGenerateContent")
        turns = srv.scenario["turns"]
        loc = locate(req, [t["prompt"] for t in turns]) if streamed and req.get("tools") else None
        if loc is None:
            srv.timeline.log("aux_request", stream=streamed, path=path)
            if not streamed:
                return self.send_json(candidate([{"text": AUX}], "STOP"))
            return self.reply({"type": "text", "text": AUX, "duration": 0.0, "ttft": 0.0}, meta=None)
        turn, step, carries = loc
        meta = {"turn": turn, "step": step}
        srv.timeline.log("request_received", tool_result=carries, n_contents=len(req.get("contents") or []),
                         **meta)
        if step >= len(turns[turn]["steps"]):
            srv.timeline.log("off_script", **meta)
            spec = {"type": "text", "text": "(mock: off script)", "duration": 0.2}
        else:
            spec = turns[turn]["steps"][step]
        is_tool = spec.get("type") == "tool_use"
        input_kind = spec.get("needs_input") or ("permission" if spec.get("needs_permission") else None)
        meta.update(stop_reason="tool_use" if is_tool else "end_turn", tool=spec.get("name") if is_tool else None,
                    needs_permission=bool(input_kind) if is_tool else False,
                    input_kind=input_kind if is_tool else None,
                    last_step=step >= len(turns[turn]["steps"]) - 1)
        return self.reply(spec, meta=meta)

    def sse(self, obj):
        self.wfile.write(f"data: {json.dumps(obj)}\r\n\r\n".encode())
        self.wfile.flush()

    def reply(self, spec, meta):
        tl = self.server.timeline
        ttft = float(spec.get("ttft", self.server.default_ttft))
        duration = float(spec.get("duration", 1.0))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            if meta:
                tl.log("stream_start", turn=meta["turn"], step=meta["step"], streamed=True)
            if ttft > 0:
                self.hold(ttft)
            silent = float(spec.get("silent", 0.0))
            if silent > 0:
                self.hold(silent)
            text = spec.get("text", "")
            pieces = chunks(text, max(1, int(duration * 10))) if text else []
            gap = duration / max(1, len(pieces))
            for c in pieces:
                self.sse(candidate([{"text": c}]))
                self.hold(gap)
            if spec.get("type") == "tool_use":
                args = substitute(spec.get("input", {}), self.server.repo)
                self.sse(candidate([{"functionCall": {"name": spec["name"], "args": args}}], "STOP"))
            else:
                self.sse(candidate([{"text": ""}], "STOP"))
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
    a = ap.parse_args()
    with open(a.scenario) as f:
        scenario = json.load(f)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.scenario = scenario
    srv.repo = a.repo
    srv.default_ttft = a.ttft
    srv.timeline = Timeline(a.log)
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
