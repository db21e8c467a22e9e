"""A real browser for the WebAuthn tests: Debian's Chromium, headless, driven by Playwright,
with Chrome DevTools Protocol virtual authenticators. A tiny page is served from
http://localhost:<port> (a secure context, so WebAuthn works over plain HTTP), and the
page's navigator.credentials.create()/get() run with the options SQL returned; what they
resolve to is PublicKeyCredential.toJSON(), handed back to SQL as it is."""
import http.server
import threading

CHROMIUM = "/usr/bin/chromium"

PAGE = b"""<!doctype html><meta charset="utf-8"><title>mfa_auth WebAuthn test page</title>
<p>mfa_auth WebAuthn test page</p>"""

CREATE_JS = """async (o) => {
  const c = await navigator.credentials.create({publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(o)});
  return c.toJSON();
}"""

GET_JS = """async (o) => {
  const c = await navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(o)});
  return c.toJSON();
}"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


def serve():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class Browser:
    """One headless Chromium with one tab. `origin` is the page the tests run on (the one
    mfa_auth.webauthn_origins allows); `other_origin` a second port, same RP id, not allowed."""

    def __init__(self):
        from playwright.sync_api import sync_playwright

        self.servers = [serve(), serve()]
        self.origin = f"http://localhost:{self.servers[0].server_address[1]}"
        self.other_origin = f"http://localhost:{self.servers[1].server_address[1]}"
        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        self.page = self._browser.new_page()
        self.page.goto(self.origin + "/")
        self.cdp = self.page.context.new_cdp_session(self.page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})
        self.version = self._browser.version

    def close(self):
        self._browser.close()
        self._pw.stop()
        for s in self.servers:
            s.shutdown()

    def authenticator(self, transport="usb", uv=True):
        """A fresh CTAP2 virtual authenticator (usb or internal), with or without user
        verification; it answers every ceremony from now on (the others are removed)."""
        for a in getattr(self, "_authenticators", []):
            self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": a})
        self._authenticators = []
        r = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": transport, "hasResidentKey": transport == "internal",
            "hasUserVerification": uv, "isUserVerified": uv, "automaticPresenceSimulation": True}})
        self._authenticators.append(r["authenticatorId"])
        self.current = r["authenticatorId"]
        return self.current

    def override(self, **bits):
        """WebAuthn.setResponseOverrideBits: isBogusSignature, isBadUV, isBadUP."""
        self.cdp.send("WebAuthn.setResponseOverrideBits", {"authenticatorId": self.current, **bits})

    def credentials(self):
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.current})["credentials"]

    def replace_credential(self, credential, **changes):
        """Removes a credential from the authenticator and adds it back with `changes`
        (e.g. signCount): WebAuthn.addCredential with the same id and private key."""
        self.cdp.send("WebAuthn.removeCredential",
                      {"authenticatorId": self.current, "credentialId": credential["credentialId"]})
        self.cdp.send("WebAuthn.addCredential", {"authenticatorId": self.current,
                                                 "credential": {**credential, **changes}})

    def _at(self, origin):
        if not self.page.url.startswith(origin + "/"):
            self.page.goto(origin + "/")

    def create(self, webauthn, alg=None, origin=None):
        """navigator.credentials.create() with create_challenge's `webauthn` value; `alg`
        keeps only that algorithm in pubKeyCredParams (to choose the key type)."""
        assert webauthn["type"] == "create", webauthn
        options = dict(webauthn["credential_options"]["publicKey"])
        if alg is not None:
            options["pubKeyCredParams"] = [p for p in options["pubKeyCredParams"] if p["alg"] == alg]
        self._at(origin or self.origin)
        try:
            return self.page.evaluate(CREATE_JS, options)
        finally:
            self._at(self.origin)

    def get(self, webauthn, origin=None, allow=None):
        """navigator.credentials.get() with the `webauthn` value; `allow` replaces
        allowCredentials (to answer with another credential than the factor's)."""
        assert webauthn["type"] == "request", webauthn
        options = dict(webauthn["credential_options"]["publicKey"])
        if allow is not None:
            options["allowCredentials"] = [{"type": "public-key", "id": allow}]
        self._at(origin or self.origin)
        try:
            return self.page.evaluate(GET_JS, options)
        finally:
            self._at(self.origin)
