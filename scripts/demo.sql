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
\echo '--- the MFA flow: enroll a TOTP factor (scan the QR with an authenticator app) ...'
SELECT factor_id, secret, uri, qr FROM auth.enroll_totp(gen_random_uuid(), 'phone app', 'mfa_auth demo', 'alice@example.com') \gset
SELECT :'factor_id' AS factor_id, :'uri' AS uri;
SELECT :'qr' AS qr;
\echo '--- the secret as stored: sealed with AES-256-GCM under the cluster key (mfa_auth.encryption_keys)'
SELECT left(secret, 30) || '...' AS stored_secret, strpos(secret, :'secret') = 0 AS no_plaintext
  FROM auth.mfa_factors WHERE id = :'factor_id';
\echo '--- ... challenge it, and verify the code the app shows (here: computed from the secret)'
SELECT challenge_id, expires_at FROM auth.create_challenge(:'factor_id', '127.0.0.1') \gset
SELECT gen_random_uuid() AS session_id \gset
SELECT auth.totp_generate(:'secret') AS code \gset
SELECT auth.verify_challenge(:'challenge_id', '000000') AS wrong_code_is_false;
SELECT auth.verify_challenge(:'challenge_id', :'code', '127.0.0.1', :'session_id') AS right_code_is_true;
SELECT auth.session_aal(:'session_id') AS aal, auth.session_amr(:'session_id') AS amr;
SELECT challenge_id AS second_challenge FROM auth.create_challenge(:'factor_id', '127.0.0.1') \gset
SELECT auth.verify_challenge(:'second_challenge', :'code') AS same_code_again_is_refused;
\echo '--- failed attempts are counted in shared memory: a ROLLBACK does not undo them'
SELECT * FROM auth.attempt_tracking();
\echo '--- row-level security and psql sessions: a table readable only by aal2 sessions'
DROP ROLE IF EXISTS demo_user;
CREATE ROLE demo_user;
CREATE TABLE public.docs (id int, body text);
INSERT INTO public.docs VALUES (1, 'quarterly numbers'), (2, 'launch plan');
ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable ON public.docs FOR SELECT USING (true);
CREATE POLICY mfa_required ON public.docs AS RESTRICTIVE FOR SELECT USING (auth.aal() = 'aal2');
GRANT SELECT ON public.docs TO demo_user;
SET ROLE demo_user;
SELECT current_user, auth.uid(), auth.aal();
SELECT factor_id AS my_factor, secret AS my_secret FROM auth.enroll_my_totp('phone') \gset
SELECT count(*) AS docs_visible_at_aal1 FROM public.docs;
\echo '--- SELECT auth.mfa_verify(''<the code your app shows>'') -- here computed from the secret'
SELECT auth.totp_generate(:'my_secret') AS my_code \gset
SELECT auth.mfa_verify(:'my_code') AS verified;
SELECT auth.aal(), count(*) AS docs_visible_at_aal2 FROM public.docs;
SELECT friendly_name, factor_type, status FROM auth.my_factors();
RESET ROLE;
