//! µs per signature verification, ring vs aws-lc-rs, on the same keys and signatures (made by
//! aws-lc-rs: ring cannot generate RSA keys). For each library: the key given as bytes at
//! every call (`UnparsedPublicKey`, what a stateless verifier does) and, where the library
//! has it, parsed once (`ParsedPublicKey`). Best of 5 runs of `ITERS` calls.

use std::hint::black_box;
use std::time::Instant;

const ITERS: u32 = 2000;

fn best_us(mut f: impl FnMut() -> bool) -> f64 {
    for _ in 0..ITERS / 10 {
        assert!(f());
    }
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..ITERS {
                assert!(black_box(f()));
            }
            t.elapsed().as_nanos() as f64 / f64::from(ITERS) / 1000.0
        })
        .fold(f64::INFINITY, f64::min)
}

struct Case {
    name: &'static str,
    public_key: Vec<u8>,
    /// RSA: (n, e) components.
    rsa: Option<(Vec<u8>, Vec<u8>)>,
    message: Vec<u8>,
    signature: Vec<u8>,
}

fn cases() -> Vec<Case> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self as s, KeyPair};
    let rng = SystemRandom::new();
    // authenticatorData (37 bytes) || SHA-256(clientDataJSON): what WebAuthn signs.
    let message: Vec<u8> = (0u8..69).collect();
    let ec = s::EcdsaKeyPair::generate(&s::ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let ec_sig = ec.sign(&rng, &message).unwrap().as_ref().to_vec();
    let ed = s::Ed25519KeyPair::generate().unwrap();
    let ed_sig = ed.sign(&message).as_ref().to_vec();
    let mut out = vec![
        Case {
            name: "ES256 (P-256)",
            public_key: ec.public_key().as_ref().to_vec(),
            rsa: None,
            message: message.clone(),
            signature: ec_sig,
        },
        Case {
            name: "EdDSA (Ed25519)",
            public_key: ed.public_key().as_ref().to_vec(),
            rsa: None,
            message: message.clone(),
            signature: ed_sig,
        },
    ];
    for (bits, size) in [(2048, aws_lc_rs::rsa::KeySize::Rsa2048), (4096, aws_lc_rs::rsa::KeySize::Rsa4096)] {
        let rsa = s::RsaKeyPair::generate(size).unwrap();
        let mut sig = vec![0u8; rsa.public_modulus_len()];
        rsa.sign(&s::RSA_PKCS1_SHA256, &rng, &message, &mut sig).unwrap();
        let comps: aws_lc_rs::rsa::PublicKeyComponents<Vec<u8>> = rsa.public_key().into();
        out.push(Case {
            name: if bits == 2048 { "RS256 (RSA-2048)" } else { "RS256 (RSA-4096)" },
            public_key: rsa.public_key().as_ref().to_vec(),
            rsa: Some((comps.n, comps.e)),
            message: message.clone(),
            signature: sig,
        });
    }
    out
}

/// Whether each library accepts a small-order Ed25519 key (the identity point) with R =
/// identity and S = 0: valid under the cofactorless equation for every message, refused by
/// ed25519-dalek's `verify_strict`.
fn ed25519_small_order() {
    let mut key = [0u8; 32];
    key[0] = 1;
    let mut sig = key.to_vec();
    sig.extend([0u8; 32]);
    let msg = b"any message";
    let ring = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key).verify(msg, &sig).is_ok();
    let aws =
        aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, &key).verify(msg, &sig).is_ok();
    let verdict = |ok: bool| if ok { "accepted" } else { "refused" };
    println!("Ed25519 small-order key, R = identity, S = 0: ring {}, aws-lc-rs {}", verdict(ring), verdict(aws));
}

fn main() {
    ed25519_small_order();
    println!("signature verification, µs per call (best of 5 x {ITERS}); keys as bytes per call / parsed once");
    println!("{:<18} {:>14} {:>18} {:>18}", "", "ring bytes", "aws-lc-rs bytes", "aws-lc-rs parsed");
    for c in cases() {
        let ring_us = {
            use ring::signature as s;
            match &c.rsa {
                None => {
                    let alg: &dyn s::VerificationAlgorithm =
                        if c.name.starts_with("ES") { &s::ECDSA_P256_SHA256_ASN1 } else { &s::ED25519 };
                    best_us(|| s::UnparsedPublicKey::new(alg, &c.public_key).verify(&c.message, &c.signature).is_ok())
                }
                Some((n, e)) => best_us(|| {
                    s::RsaPublicKeyComponents { n, e }
                        .verify(&s::RSA_PKCS1_2048_8192_SHA256, &c.message, &c.signature)
                        .is_ok()
                }),
            }
        };
        let (aws_us, aws_parsed_us) = {
            use aws_lc_rs::signature as s;
            let alg: &'static dyn s::VerificationAlgorithm = match c.name.as_bytes()[..2] {
                [b'E', b'S'] => &s::ECDSA_P256_SHA256_ASN1,
                [b'E', b'd'] => &s::ED25519,
                _ => &s::RSA_PKCS1_2048_8192_SHA256,
            };
            let bytes =
                best_us(|| s::UnparsedPublicKey::new(alg, &c.public_key).verify(&c.message, &c.signature).is_ok());
            let parsed = s::ParsedPublicKey::new(alg, &c.public_key).unwrap();
            (bytes, best_us(|| parsed.verify_sig(&c.message, &c.signature).is_ok()))
        };
        println!("{:<18} {:>14.1} {:>18.1} {:>18.1}", c.name, ring_us, aws_us, aws_parsed_us);
    }
}
