//! Micro-benchmark of the pure TOTP core: ns per verification with a window of ±1
//! (3 HMACs), wrong code (every step computed), per algorithm, plus base32 decode.
//! Run: cargo run --release --example totp_micro   (prints figures; no pass/fail)

use std::hint::black_box;
use std::time::Instant;

use mfa_auth::otp::{base32, hotp, Algorithm, OtpParams};

fn time_ns<F: FnMut()>(iters: u32, mut f: F) -> f64 {
    for _ in 0..iters / 10 {
        f(); // warm up
    }
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"; // 20 bytes
    let key = base32::decode(secret).unwrap();
    let now = 1_700_000_000i64;
    println!("TOTP core micro-benchmark (best of 5 runs, window ±1, wrong code => 3 HMACs)");
    for alg in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
        let params = OtpParams::new(alg, 6, 30).unwrap();
        let ns = time_ns(200_000, || {
            black_box(hotp::verify_totp(black_box(&key), black_box("000000"), now, 1, &params).unwrap());
        });
        println!("verify_totp {:<6} {:>8.0} ns/verify", alg.name(), ns);
    }
    let params = OtpParams::default();
    let ns = time_ns(200_000, || {
        let k = base32::decode(black_box(secret)).unwrap();
        black_box(hotp::verify_totp(&k, black_box("000000"), now, 1, &params).unwrap());
    });
    println!("decode+verify SHA1  {:>8.0} ns/verify (what one SQL call does)", ns);
    let ns = time_ns(1_000_000, || {
        black_box(base32::decode(black_box(secret)).unwrap());
    });
    println!("base32 decode 32 ch {:>8.0} ns", ns);
    let ns = time_ns(200_000, || {
        black_box(hotp::hotp(black_box(&key), black_box(56_666_666), 6, Algorithm::Sha1));
    });
    println!("hotp SHA1 (1 HMAC)  {:>8.0} ns", ns);
}
