-- The baseline: TOTP verification in plpgsql over pgcrypto, written the way a careful user
-- would (decode the secret once per call, HMAC the 8-byte big-endian counter, RFC 4226
-- dynamic truncation, compare over a window of +-1 step). Used only by bench/run.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE SCHEMA IF NOT EXISTS bench;

CREATE OR REPLACE FUNCTION bench.base32_decode(secret text) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    alphabet CONSTANT text := 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    clean text := upper(translate(rtrim(secret, '='), ' -', ''));
    result bytea := ''::bytea;
    buffer bigint := 0;
    bits int := 0;
    v int;
BEGIN
    FOR i IN 1 .. length(clean) LOOP
        v := strpos(alphabet, substr(clean, i, 1)) - 1;
        IF v < 0 THEN
            RAISE EXCEPTION 'invalid base32 character at %', i;
        END IF;
        buffer := (buffer << 5) | v;
        bits := bits + 5;
        IF bits >= 8 THEN
            bits := bits - 8;
            result := result || set_byte('\x00'::bytea, 0, ((buffer >> bits) & 255)::int);
            buffer := buffer & ((1::bigint << bits) - 1);
        END IF;
    END LOOP;
    RETURN result;
END $$;

CREATE OR REPLACE FUNCTION bench.hotp(key bytea, counter bigint) RETURNS int
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    h bytea := hmac(int8send(counter), key, 'sha1');
    o int := get_byte(h, 19) & 15;
BEGIN
    RETURN (((get_byte(h, o) & 127) << 24) | (get_byte(h, o + 1) << 16)
            | (get_byte(h, o + 2) << 8) | get_byte(h, o + 3)) % 1000000;
END $$;

CREATE OR REPLACE FUNCTION bench.totp_verify_plpgsql(secret text, code text, at timestamptz, win int)
RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    key bytea := bench.base32_decode(secret);
    step bigint := floor(extract(epoch FROM at) / 30)::bigint;
BEGIN
    FOR off IN -win .. win LOOP
        IF lpad(bench.hotp(key, step + off)::text, 6, '0') = code THEN
            RETURN step + off;
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
