-- The example app of docs/testing-your-policies.md: its payments need a verified second factor
-- from the users who have one (the recipe of docs/reference.md, "Enforcement helpers"), its
-- profiles are open at aal1. Each user reads only their own rows.
CREATE SCHEMA app;
CREATE TABLE app.profiles (
    user_id      uuid PRIMARY KEY,
    display_name text NOT NULL
);
CREATE TABLE app.payments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      uuid    NOT NULL,
    amount_cents integer NOT NULL
);
ALTER TABLE app.profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.payments ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_profile ON app.profiles FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()));
CREATE POLICY own_payments ON app.payments FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()));
CREATE POLICY payments_need_mfa ON app.payments AS RESTRICTIVE FOR SELECT TO authenticated
    USING ((SELECT auth.mfa_satisfied()));
GRANT USAGE ON SCHEMA app TO authenticated;
GRANT SELECT ON app.profiles, app.payments TO authenticated;

-- Three users, each with a profile and two payments.
INSERT INTO app.profiles VALUES
    ('a1111111-1111-4111-8111-111111111111', 'alice'),   -- enrolls TOTP in the tests
    ('b2222222-2222-4222-8222-222222222222', 'bob'),     -- never enrolls
    ('c3333333-3333-4333-8333-333333333333', 'carol');   -- enrolls, then unenrolls
INSERT INTO app.payments (user_id, amount_cents)
    SELECT p.user_id, a FROM app.profiles p, (VALUES (1200), (3400)) v(a);
