#!/usr/bin/env bash
# The main job on a fresh machine with Python 3.11+ and pip: set up, start the built-in capture
# inbox on 127.0.0.1, send issue 011 to subscribers.csv through it over real SMTP, show the result.
# Nothing outside this machine is contacted. GIGO_DEMO_PORT picks another port than 1025.
set -euo pipefail
cd "$(dirname "$0")"
port="${GIGO_DEMO_PORT:-1025}"

python3 -m venv .venv
.venv/bin/pip install -q -e .
gigo() { .venv/bin/gigo-mail "$@"; }

echo "== 1. compile issue 011"
gigo build 011

echo "== 2. start the capture inbox on 127.0.0.1:$port"
mkdir -p .gigo
rm -f .gigo/demo-inbox.log
# The binary itself goes in the background (not a shell function, whose $! would be a subshell), so the
# EXIT trap stops the inbox itself, and waits for it: a second run finds the port free.
.venv/bin/gigo-mail inbox --port "$port" > .gigo/demo-inbox.log 2>&1 &
inbox_pid=$!
stop_inbox() { kill "$inbox_pid" 2>/dev/null && wait "$inbox_pid" 2>/dev/null; true; }
trap stop_inbox EXIT
.venv/bin/python - "$port" "$inbox_pid" <<'PY'
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
for _ in range(100):
    try:
        os.kill(pid, 0)  # our inbox must be the one listening (not a leftover on the same port)
    except OSError:
        break
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        time.sleep(0.1)
        os.kill(pid, 0)
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
print(open(".gigo/demo-inbox.log").read().strip() or f"the inbox did not start on port {port}", file=sys.stderr)
sys.exit(1)
PY
export GIGO_SMTP_URL="smtp://127.0.0.1:$port"

echo "== 3. a test copy to yourself (not recorded in the journal)"
gigo send 011 --to you@example.org --smtp "$GIGO_SMTP_URL"

echo "== 4. the real send to subscribers.csv (a second run sends nobody twice)"
gigo send 011 --list subscribers.csv --yes --smtp "$GIGO_SMTP_URL"

echo "== 5. status from the journal"
gigo status 011

sleep 0.3
echo "== 6. what the inbox received"
cat .gigo/demo-inbox.log
echo
echo "The messages are in .gigo/inbox/ (a Maildir: any mail client opens it)."
echo "To look at them in a browser:  .venv/bin/gigo-mail preview 011 --serve   then open the Inbox page."
