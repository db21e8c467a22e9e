-- A short tour of mfa_auth, run by scripts/try.sh when stdin is not a terminal.
\echo '--- the seed tables, as created by CREATE EXTENSION mfa_auth'
\d auth.mfa_challenges
\d auth.mfa_amr_claims
\echo '--- a new secret, its otpauth URI and QR code (scan it with an authenticator app)'
SELECT auth.generate_secret() AS secret \gset
SELECT auth.otpauth_uri(:'secret', 'alice@example.com', 'mfa_auth demo') AS uri \gset
SELECT :'uri' AS uri;
SELECT auth.qr_text(:'uri') AS qr;
\echo '--- the current code, and verifying it (the matched time step)'
SELECT auth.totp_generate(:'secret') AS code \gset
SELECT :'code' AS code, auth.totp_verify(:'secret', :'code') AS matched_step,
       auth.totp_verify(:'secret', '000000') AS wrong_code;
