"""A software WebAuthn authenticator for the upgrade tests and the docs test: ES256 (P-256 from `cryptography`),
"none" attestation, user present and verified. Its key and signature count are saved in the
test's state file, so a credential registered on an old release signs in after the update (a
browser's virtual authenticator lives only as long as its browser). What it answers is the
PublicKeyCredential.toJSON() shape a browser hands to auth.verify_webauthn; the browser tests
(tests/e2e/test_webauthn.py) check the same shape against Chromium and py_webauthn."""
import base64
import hashlib
import json
import os
import struct

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, AT = 0x01, 0x04, 0x40


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class SoftKey:
    def __init__(self, saved=None):
        if saved:
            self.key = serialization.load_pem_private_key(saved["pem"].encode(), None)
            self.cred_id, self.count = bytes.fromhex(saved["cred_id"]), saved["count"]
        else:
            self.key, self.cred_id, self.count = ec.generate_private_key(ec.SECP256R1()), os.urandom(32), 0

    def saved(self):
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        return {"pem": pem, "cred_id": self.cred_id.hex(), "count": self.count}

    def _client_data(self, kind, options, origin):
        return json.dumps({"type": kind, "challenge": options["challenge"], "origin": origin,
                           "crossOrigin": False}).encode()

    def _auth_data(self, rp_id, flags, attested=b""):
        self.count += 1
        return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", self.count) + attested

    def create(self, webauthn, origin):
        """The registration response to create_challenge's `webauthn` value (type "create")."""
        assert webauthn["type"] == "create", webauthn
        options = webauthn["credential_options"]["publicKey"]
        n = self.key.public_key().public_numbers()
        cose = {1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")}
        attested = bytes(16) + struct.pack(">H", len(self.cred_id)) + self.cred_id + cbor2.dumps(cose)
        auth_data = self._auth_data(options["rp"]["id"], UP | UV | AT, attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {"id": b64u(self.cred_id), "rawId": b64u(self.cred_id), "type": "public-key",
                "authenticatorAttachment": "cross-platform", "clientExtensionResults": {},
                "response": {"clientDataJSON": b64u(self._client_data("webauthn.create", options, origin)),
                             "attestationObject": b64u(attestation), "transports": ["usb"]}}

    def get(self, webauthn, origin):
        """The assertion for create_challenge's `webauthn` value (type "request")."""
        assert webauthn["type"] == "request", webauthn
        options = webauthn["credential_options"]["publicKey"]
        client_data = self._client_data("webauthn.get", options, origin)
        auth_data = self._auth_data(options["rpId"], UP | UV)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {"id": b64u(self.cred_id), "rawId": b64u(self.cred_id), "type": "public-key",
                "authenticatorAttachment": "cross-platform", "clientExtensionResults": {},
                "response": {"clientDataJSON": b64u(client_data), "authenticatorData": b64u(auth_data),
                             "signature": b64u(signature), "userHandle": None}}
