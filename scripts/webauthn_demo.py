"""The WebAuthn demo page (scripts/webauthn-demo starts it): a tiny web app on
http://localhost:<port> whose buttons run the self-service flow of one database user
(role `webauthn_demo`, a psql-style database session):

  Register  auth.enroll_my_webauthn() + auth.webauthn_options() -> navigator.credentials.create()
            -> auth.mfa_verify_webauthn()                          -> auth.aal() = aal2
  Sign in   a new connection (a new session, aal1) -> auth.webauthn_options()
            -> navigator.credentials.get() -> auth.mfa_verify_webauthn() -> aal2

    python scripts/webauthn_demo.py --port 8437 --dsn "host=127.0.0.1 port=54329 dbname=mfa_auth_webauthn"
"""
import argparse
import http.server
import json
import threading

import psycopg

ROLE = "webauthn_demo"

PAGE = """<!doctype html><meta charset="utf-8"><title>mfa_auth WebAuthn demo</title>
<style>body{font:16px system-ui;max-width:42em;margin:2em auto}button{font-size:1em;margin:.2em}
pre{background:#f4f4f4;padding:1em;white-space:pre-wrap}</style>
<h1>mfa_auth: WebAuthn inside PostgreSQL</h1>
<p>Every check runs in the database: this page only hands the options from
<code>auth.webauthn_options()</code> to your browser and the answer back to
<code>auth.mfa_verify_webauthn()</code>.</p>
<button id="register">Register a security key or passkey</button>
<button id="signin">Sign in again (new session) with it</button>
<p>Session: <b id="aal">?</b></p>
<pre id="log"></pre>
<script>
const log = (m) => { document.getElementById('log').textContent = m + '\\n' + document.getElementById('log').textContent; };
const post = async (path, body) => {
  const r = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body || {})});
  const j = await r.json(); if (!r.ok) throw new Error(j.error); return j;
};
const show = (s) => { document.getElementById('aal').textContent = s.aal + ' ' + JSON.stringify(s.amr); };
async function ceremony(start) {
  const o = await post(start);
  log('SQL returned ' + o.webauthn.type + ' options for challenge ' + o.challenge_id);
  const pk = o.webauthn.credential_options.publicKey;
  const cred = o.webauthn.type === 'create'
    ? await navigator.credentials.create({publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(pk)})
    : await navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(pk)});
  const v = await post('/verify', {challenge_id: o.challenge_id, credential: cred.toJSON()});
  log('auth.mfa_verify_webauthn: ' + v.verified + ', auth.aal(): ' + v.aal);
  show(v);
}
const run = (id, path) => document.getElementById(id).onclick = () => ceremony(path).catch(e => log('error: ' + e.message));
run('register', '/register'); run('signin', '/signin');
fetch('/state').then(r => r.json()).then(show);
</script>
"""


class Demo:
    """One database session at a time for the demo user; /signin starts a new one."""

    def __init__(self, dsn):
        self.dsn = dsn
        self.lock = threading.Lock()
        self.conn = self.connect()

    def connect(self):
        return psycopg.connect(self.dsn, user=ROLE, autocommit=True)

    def state(self):
        aal, amr = self.conn.execute("SELECT auth.aal()::text, auth.amr()").fetchone()
        return {"aal": aal, "amr": [m["method"] for m in amr]}

    def register(self, _):
        factor = self.conn.execute(
            "SELECT factor_id FROM auth.my_factors() WHERE factor_type = 'webauthn' AND status = 'unverified'"
        ).fetchone()
        if factor is None:
            factor = self.conn.execute("SELECT auth.enroll_my_webauthn('demo key')").fetchone()
        return self.conn.execute("SELECT auth.webauthn_options(%s)", (factor[0],)).fetchone()[0]

    def signin(self, _):
        self.conn.close()
        self.conn = self.connect()
        factor = self.conn.execute(
            "SELECT factor_id FROM auth.my_factors() WHERE factor_type = 'webauthn' AND status = 'verified'"
            " ORDER BY created_at DESC LIMIT 1").fetchone()
        if factor is None:
            raise ValueError("register a key first")
        return self.conn.execute("SELECT auth.webauthn_options(%s)", (factor[0],)).fetchone()[0]

    def verify(self, body):
        ok = self.conn.execute("SELECT auth.mfa_verify_webauthn(%s, %s::jsonb)",
                               (body["challenge_id"], json.dumps(body["credential"]))).fetchone()[0]
        return {"verified": ok, **self.state()}


def handler(demo):
    class Handler(http.server.BaseHTTPRequestHandler):
        def reply(self, status, body, kind="application/json"):
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/state":
                with demo.lock:
                    return self.reply(200, demo.state())
            self.reply(200, PAGE, "text/html; charset=utf-8")

        def do_POST(self):
            action = {"/register": demo.register, "/signin": demo.signin, "/verify": demo.verify}.get(self.path)
            if action is None:
                return self.reply(404, {"error": "not found"})
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            try:
                with demo.lock:
                    self.reply(200, action(body))
            except (psycopg.Error, ValueError) as e:
                self.reply(400, {"error": str(e).strip()})

        def log_message(self, *args):
            pass

    return Handler


def serve(dsn, port=0):
    """Starts the demo server in a thread; returns it (server_address has the port)."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler(Demo(dsn)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8437)
    p.add_argument("--dsn", required=True)
    a = p.parse_args()
    srv = serve(a.dsn, a.port)
    print(f"open http://localhost:{a.port}/ in a browser on this machine (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        srv.shutdown()
