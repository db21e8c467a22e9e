-- WebAuthn factors through SQL: the settings a relying party needs, the shape of the options,
-- which function verifies which challenge, malformed credentials (22023 naming the field, not
-- counted), and a well-formed but wrong registration (false, counted, the challenge used up).
-- The ceremonies themselves run in a real browser: tests/e2e/test_webauthn.py.
SET client_min_messages = warning;
-- Not configured: every WebAuthn call names the missing setting.
SELECT sqlstate_of($$SELECT auth.enroll_webauthn('00000000-0000-0000-0000-0000000000a1')$$);
SET mfa_auth.webauthn_rp_id = 'example.org';
SELECT sqlstate_of($$SELECT auth.enroll_webauthn('00000000-0000-0000-0000-0000000000a1')$$);
-- Origins must be exact https origins within the rp id (http only for localhost).
SET mfa_auth.webauthn_origins = 'http://example.org';
SELECT sqlstate_of($$SELECT auth.enroll_webauthn('00000000-0000-0000-0000-0000000000a1')$$);
SET mfa_auth.webauthn_origins = 'https://example.org/login';
SELECT sqlstate_of($$SELECT auth.enroll_webauthn('00000000-0000-0000-0000-0000000000a1')$$);
SET mfa_auth.webauthn_origins = 'https://example.org, https://evil.example';
SELECT sqlstate_of($$SELECT auth.enroll_webauthn('00000000-0000-0000-0000-0000000000a1')$$);
SET mfa_auth.webauthn_origins = 'https://example.org, https://app.example.org:8443';
-- A value that is not one of the three is refused by SET itself (an enum setting).
SELECT sqlstate_of($$SET mfa_auth.webauthn_user_verification = 'sometimes'$$);
SHOW mfa_auth.webauthn_user_verification;
-- Configured: an unverified factor, and its first challenge is a registration.
SELECT auth.enroll_webauthn('00000000-0000-0000-0000-0000000000a1', 'yubikey') AS w \gset
SELECT factor_type, status, web_authn_credential IS NULL AS no_credential_yet
  FROM auth.mfa_factors WHERE id = :'w';
SELECT challenge_id AS wc, webauthn AS opts FROM auth.create_challenge(:'w', '10.0.0.1') \gset
SELECT :'opts'::jsonb->>'type' AS type,
       :'opts'::jsonb #>> '{credential_options,publicKey,rp,id}' AS rp_id,
       :'opts'::jsonb #>> '{credential_options,publicKey,rp,name}' AS rp_name,
       :'opts'::jsonb #>> '{credential_options,publicKey,user,id}' AS user_handle,
       length(:'opts'::jsonb #>> '{credential_options,publicKey,challenge}') AS challenge_chars,
       :'opts'::jsonb #> '{credential_options,publicKey,pubKeyCredParams}' AS algorithms,
       :'opts'::jsonb #>> '{credential_options,publicKey,attestation}' AS attestation;
-- What verification needs is kept with the challenge (go-webauthn's SessionData names).
SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(web_authn_session_data) k) AS keys,
       web_authn_session_data->>'rpId' AS rp_id, web_authn_session_data->>'type' AS type,
       web_authn_session_data->>'challenge' = :'opts'::jsonb #>> '{credential_options,publicKey,challenge}' AS same_challenge,
       (web_authn_session_data->>'expires')::timestamptz = created_at + interval '300 s' AS expires_with_challenge
  FROM auth.mfa_challenges WHERE id = :'wc';
-- Callers that name the first three columns keep working; other factor types have no webauthn.
SELECT factor_id AS t FROM auth.enroll_totp('00000000-0000-0000-0000-0000000000a1', 'phone app') \gset
SELECT challenge_id AS tc, webauthn IS NULL AS no_options FROM auth.create_challenge(:'t', '10.0.0.1') \gset
SELECT :'no_options' AS totp_challenge_has_no_webauthn_options;
SELECT code IS NULL AS no_code FROM auth.create_challenge(:'t', '10.0.0.1');
-- Each challenge is verified by its own function.
SELECT sqlstate_of(format($$SELECT auth.verify_challenge(%L, '123456')$$, :'wc'));
SELECT sqlstate_of(format($$SELECT auth.verify_factor(%L, '123456')$$, :'w'));
SELECT sqlstate_of(format($$SELECT auth.verify_webauthn(%L, '{}')$$, :'tc'));
-- Malformed credentials: 22023 naming the field; nothing counted, the challenge still open.
SELECT sqlstate_of(format($$SELECT auth.verify_webauthn(%L, %L)$$, :'wc', q)) AS outcome
  FROM (VALUES ('null'), ('[]'), ('{}'), ('{"type": 7}'),
               ('{"type": "public-key", "rawId": "AA"}'),
               ('{"type": "public-key", "rawId": "A", "response": {}}'),
               ('{"type": "public-key", "rawId": "AA", "id": "AQ", "response": {}}'),
               ('{"type": "public-key", "rawId": "AA", "response": {"clientDataJSON": "e30"}}'),
               ('{"type": "public-key", "rawId": "AA", "response": {"clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIiwiY2hhbGxlbmdlIjoiQUEiLCJvcmlnaW4iOiJodHRwczovL2V4YW1wbGUub3JnIn0", "attestationObject": "gYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgQA"}}')) v(q);
SELECT sqlstate_of(format($$SELECT auth.verify_webauthn(%L, jsonb_build_object('pad', repeat('x', 20000000)))$$, :'wc'));
SELECT sqlstate_of(format($$SELECT auth.verify_webauthn(%L, NULL)$$, :'wc'));
SELECT failed_attempts FROM auth.mfa_factors WHERE id = :'w';
SELECT web_authn_session_data IS NOT NULL AS still_open FROM auth.mfa_challenges WHERE id = :'wc';
-- A well-formed registration for another challenge (the W3C Level 3 test vector "ES256
-- Credential with No Attestation"): false and counted, and the challenge is used up.
\set w3c '{"id": "-R85HbTJsv3g6nAYnLo_tj9Xm6YSKzOtlP8-wzAIS-Q", "rawId": "-R85HbTJsv3g6nAYnLo_tj9Xm6YSKzOtlP8-wzAIS-Q", "type": "public-key", "response": {"clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIiwiY2hhbGxlbmdlIjoiQU1NUHQ0VXh4R1RTdG5jZHE0MTdZRHdCRmk4dnBJYS1wdzhvT3VWVzRUQSIsIm9yaWdpbiI6Imh0dHBzOi8vZXhhbXBsZS5vcmciLCJjcm9zc09yaWdpbiI6ZmFsc2UsImV4dHJhRGF0YSI6ImNsaWVudERhdGFKU09OIG1heSBiZSBleHRlbmRlZCB3aXRoIGFkZGl0aW9uYWwgZmllbGRzIGluIHRoZSBmdXR1cmUsIHN1Y2ggYXMgdGhpczogQmtRZURqZGNUQnJYQmlBd0pUTEU1USJ9", "attestationObject": "o2NmbXRkbm9uZWdhdHRTdG10oGhhdXRoRGF0YVikv6vDdDKViwYzYNOtZGHJxHNa5_jt1GWSpeDwFFKy5LVZAAAAAIRGzLmrHbN0dQsjZ_9vOh8AIPkfOR20ybL94OpwGJy6P7Y_V5umEiszrZT_PsMwCEvkpQECAyYgASFYIK_voW-XypstI-uGzLZAmNINuQhWBi6yScM6m2cvJt9hIlggkwpWuHovymYzSwNFir-HlxfBLMaO1zKQry4mZHlrkiA"}}'
SELECT auth.verify_webauthn(:'wc', :'w3c');
SELECT failed_attempts, status FROM auth.mfa_factors WHERE id = :'w';
SELECT sqlstate_of(format($$SELECT auth.verify_webauthn(%L, %L)$$, :'wc', :'w3c'));
-- The same vector against a challenge whose session data carries its challenge, rp id and
-- origin: it registers (the checks pass end to end through SQL).
SET mfa_auth.webauthn_origins = 'https://example.org';
SELECT challenge_id AS wc2 FROM auth.create_challenge(:'w', '10.0.0.1') \gset
UPDATE auth.mfa_challenges
   SET web_authn_session_data = jsonb_set(web_authn_session_data, '{challenge}', to_jsonb('AMMPt4UxxGTStncdq417YDwBFi8vpIa-pw8oOuVW4TA'::text))
 WHERE id = :'wc2';
SELECT auth.verify_webauthn(:'wc2', :'w3c');
SELECT status, web_authn_aaguid, web_authn_credential->>'id' AS credential_id,
       web_authn_credential->>'algorithm' AS algorithm, web_authn_credential->>'attestation_format' AS fmt,
       web_authn_credential->>'sign_count' AS sign_count, failed_attempts
  FROM auth.mfa_factors WHERE id = :'w';
-- A verified factor's challenge is an authentication for its credential only.
SELECT webauthn->>'type' AS type,
       webauthn #> '{credential_options,publicKey,allowCredentials}' AS allow,
       webauthn #>> '{credential_options,publicKey,rpId}' AS rp_id
  FROM auth.create_challenge(:'w', '10.0.0.1');
-- Self-service needs a user and a WebAuthn factor of theirs.
SELECT sqlstate_of($$SELECT auth.webauthn_options()$$);
SELECT sqlstate_of($$SELECT auth.mfa_verify_webauthn(NULL, '{}')$$);
SELECT sqlstate_of(format($$SELECT auth.mfa_verify_webauthn(%L, '{}')$$, :'wc2'));
SELECT auth.unenroll_factor(:'w');
SELECT auth.unenroll_factor(:'t');
RESET mfa_auth.webauthn_rp_id;
RESET mfa_auth.webauthn_origins;
