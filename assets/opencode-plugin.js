// corral's OpenCode plugin: tells corral's server what this OpenCode is doing (working, asking,
// idle) the moment OpenCode itself knows, through `corral hook opencode JSON`. corral writes this
// file and names it in OPENCODE_CONFIG_CONTENT for the agents it runs; nothing else loads it.
import { spawn } from "node:child_process";

const CORRAL = __CORRAL_EXE__;
// Sessions of subagents (the task tool): their busy and idle are not the agent's turn.
const children = new Set();
// One `corral hook` at a time, in order: a turn's last "busy" and its "idle" come a few
// milliseconds apart, and two processes started that close could reach the server the wrong way
// round. While one runs, only the newest waiting event is kept (it is the state now).
let running = false;
let waiting = null;

function send(payload) {
  if (running) {
    waiting = payload;
    return;
  }
  running = true;
  let done = false;
  const next = () => {
    if (done) return;
    done = true;
    running = false;
    if (waiting !== null) {
      const p = waiting;
      waiting = null;
      send(p);
    }
  };
  try {
    const child = spawn(CORRAL, ["hook", "opencode", JSON.stringify(payload)], { stdio: "ignore" });
    child.on("exit", next);
    child.on("error", next);
  } catch {
    next();
  }
}

export const CorralStatus = async () => ({
  event: async ({ event }) => {
    const p = event.properties || {};
    switch (event.type) {
      case "session.created":
        if (p.info && p.info.parentID) children.add(p.info.id);
        return;
      case "session.status":
        if (children.has(p.sessionID)) return;
        send({ type: event.type, status: (p.status && p.status.type) || "" });
        return;
      // A subagent's question waits for the user as much as the agent's own.
      case "permission.asked":
      case "permission.replied":
      case "question.asked":
      case "question.replied":
      case "question.rejected":
        send({ type: event.type });
        return;
    }
  },
});
