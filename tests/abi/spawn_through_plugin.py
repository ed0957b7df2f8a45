#!/usr/bin/env python3
"""Runs the server with one executor plugin and checks that a spawn goes through it.

usage: spawn_through_plugin.py SERVER PLUGIN_DIR EXECUTOR_ID [--expect-version V]
                               [--expect-no-config-check]

Writes a config that selects EXECUTOR_ID from PLUGIN_DIR over stdio, checks that
`--list-plugins` shows the plugin (with version V when given), then speaks newline-delimited
JSON-RPC: initialize, tools/call spawn {command: "hello"}; the template executor answers with
the argv it got ("/bin/sh -c hello") and exit status 0. With --expect-no-config-check, also
checks that `--check-config` passes with a note that the plugin offers no config check (a
plugin older than that optional part).
"""
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading


def main():
    args = sys.argv[1:]
    expect_version = None
    expect_no_check = "--expect-no-config-check" in args
    if expect_no_check:
        args.remove("--expect-no-config-check")
    if "--expect-version" in args:
        i = args.index("--expect-version")
        expect_version = args[i + 1]
        del args[i:i + 2]
    if len(args) != 3:
        sys.stderr.write(__doc__)
        return 2
    server, plugin_dir, executor = args
    with tempfile.TemporaryDirectory(prefix="pmcp-plugin-test.") as work:
        config = os.path.join(work, "process-mcp.toml")
        with open(config, "w") as f:
            f.write('executor = "%s"\ntransports = ["stdio"]\nplugin_dirs = [%s]\n'
                    % (executor, json.dumps(os.path.abspath(plugin_dir))))
        listed = subprocess.run([server, "--config", config, "--list-plugins"],
                                capture_output=True, text=True, timeout=30)
        line = next((l for l in listed.stdout.splitlines() if l.split()[:1] == [executor]), None)
        if listed.returncode != 0 or line is None:
            return fail("--list-plugins does not show '%s' (exit %d):\n%s%s"
                        % (executor, listed.returncode, listed.stdout, listed.stderr))
        print("listed: %s" % line)
        if expect_version is not None and expect_version not in line.split():
            return fail("--list-plugins shows another version than %s: %s" % (expect_version, line))
        if expect_no_check:
            checked = subprocess.run([server, "--config", config, "--check-config"],
                                     capture_output=True, text=True, timeout=30)
            if checked.returncode != 0 or "offers no config check" not in checked.stderr:
                return fail("--check-config with a plugin without the check (exit %d): %s"
                            % (checked.returncode, checked.stderr))
            print("check-config: %s" % checked.stderr.strip())
        return converse(server, config)


def fail(why, stderr_text=""):
    sys.stderr.write("FAIL: %s\n" % why)
    if stderr_text:
        sys.stderr.write("--- server stderr ---\n%s" % stderr_text)
    return 1


def converse(server, config):
    proc = subprocess.Popen([server, "--config", config], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    stderr_lines = []

    def pump_stdout():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump_stdout, daemon=True).start()
    threading.Thread(target=lambda: stderr_lines.extend(proc.stderr), daemon=True).start()

    class Failed(Exception):
        pass

    def send(message):
        try:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
        except BrokenPipeError:
            raise Failed("the server closed its stdin (exit code %s)" % proc.wait())

    def reply_to(request_id, timeout=30):
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                raise Failed("no reply to request %d within %d s" % (request_id, timeout))
            if line is None:
                raise Failed("the server closed stdout before replying to %d" % request_id)
            try:
                message = json.loads(line)
            except ValueError:
                raise Failed("stdout is not JSON-RPC: %r" % line)
            if isinstance(message, dict) and message.get("id") == request_id:
                return message

    try:
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": {"name": "plugin-test", "version": "1"}}})
        init = reply_to(1)
        if "result" not in init:
            raise Failed("initialize failed: %s" % json.dumps(init))
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
              "params": {"name": "spawn", "arguments": {"command": "hello"}}})
        reply = reply_to(2)
        result = reply.get("result")
        if not isinstance(result, dict):
            raise Failed("tools/call spawn failed: %s" % json.dumps(reply))
        texts = [c.get("text", "") for c in result.get("content", []) if isinstance(c, dict)]
        seen = "\n".join(texts) + "\n" + json.dumps(result.get("structuredContent"),
                                                     separators=(",", ":"))
        if result.get("isError"):
            raise Failed("spawn reported an error: %s" % seen)
        if "/bin/sh -c hello" not in seen:
            raise Failed("the reply lacks the example's output '/bin/sh -c hello': %s" % seen)
        if not re.search(r'"status"\s*:\s*"terminated"', seen):
            raise Failed('the reply lacks "status":"terminated": %s' % seen)
        print("spawn reply: %s" % seen.strip())
        proc.stdin.close()
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            raise Failed("the server did not exit within 15 s after its stdin closed")
        if code != 0:
            raise Failed("the server exited with %d after its stdin closed" % code)
    except Failed as e:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        return fail(str(e), "".join(stderr_lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
