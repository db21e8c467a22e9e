//! ECDSA P-256 verification with a variable-time double-scalar multiplication.
//!
//! Verification handles only public values (the key, the message, the signature), so it need
//! not run in constant time. p256 0.13's verifier computes `u1·G + u2·Q` as two
//! constant-time scalar multiplications (512 doublings); here it is one interleaved
//! (Straus–Shamir) pass over both scalars in width-w non-adjacent form: 256 doublings,
//! additions only at non-zero digits, a table of odd multiples of G built once per process.
//! The steps around it are those of `ecdsa::hazmat::verify_prehashed` (SEC 1 §4.1.4), and
//! `tests::same_verdicts_as_p256` checks the verdicts against p256's own verifier.

use std::sync::OnceLock;

use p256::ecdsa::Signature;
use p256::elliptic_curve::group::Group;
use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::PrimeField;
use p256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar, U256};

/// Window widths: digits of G's scalar are odd and below 2^(W_G-1) in absolute value.
const W_G: u32 = 7;
const W_Q: u32 = 5;
const TABLE_G: usize = 1 << (W_G - 2);
const TABLE_Q: usize = 1 << (W_Q - 2);
/// A 256-bit scalar has at most 257 wNAF digits.
const DIGITS: usize = 257;

/// `k` in width-`w` NAF, least significant digit first: every non-zero digit is odd and in
/// (-2^(w-1), 2^(w-1)), and any `w` consecutive digits hold at most one non-zero one.
fn wnaf(k: &Scalar, w: u32) -> [i8; DIGITS] {
    let bytes = k.to_repr(); // big-endian
                             // Little-endian limbs, one spare for the carry of a negative digit.
    let mut limbs = [0u64; 5];
    for (i, limb) in limbs.iter_mut().take(4).enumerate() {
        let at = 32 - 8 * (i + 1);
        *limb = u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    }
    let mut out = [0i8; DIGITS];
    let window = 1u64 << w;
    for digit in out.iter_mut() {
        if limbs.iter().all(|&l| l == 0) {
            break;
        }
        if limbs[0] & 1 == 1 {
            let low = limbs[0] & (window - 1);
            if low >= window / 2 {
                // digit = low - 2^w (negative): k += 2^w - low
                *digit = (low as i64 - window as i64) as i8;
                let mut carry = window - low;
                for l in limbs.iter_mut() {
                    let (v, c) = l.overflowing_add(carry);
                    *l = v;
                    carry = u64::from(c);
                    if carry == 0 {
                        break;
                    }
                }
            } else {
                *digit = low as i8;
                limbs[0] -= low; // low <= limbs[0]'s own low bits: no borrow
            }
        }
        // k >>= 1
        for i in 0..5 {
            let next = if i + 1 < 5 { limbs[i + 1] << 63 } else { 0 };
            limbs[i] = (limbs[i] >> 1) | next;
        }
    }
    out
}

/// G, 3G, 5G, ... (2·TABLE_G - 1)G, affine, computed once.
fn g_table() -> &'static [AffinePoint; TABLE_G] {
    static TABLE: OnceLock<[AffinePoint; TABLE_G]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let g = ProjectivePoint::GENERATOR;
        let g2 = g.double();
        let mut p = g;
        let mut t = [AffinePoint::IDENTITY; TABLE_G];
        for entry in t.iter_mut() {
            *entry = p.to_affine();
            p += g2;
        }
        t
    })
}

/// `u1·G + u2·Q` in variable time.
pub fn lincomb_vartime(u1: &Scalar, q: &ProjectivePoint, u2: &Scalar) -> ProjectivePoint {
    let d1 = wnaf(u1, W_G);
    let d2 = wnaf(u2, W_Q);
    let tg = g_table();
    let q2 = q.double();
    let mut tq = [*q; TABLE_Q];
    for i in 1..TABLE_Q {
        tq[i] = tq[i - 1] + q2;
    }
    let top = (0..DIGITS).rev().find(|&i| d1[i] != 0 || d2[i] != 0);
    let mut r = ProjectivePoint::IDENTITY;
    let Some(top) = top else { return r };
    for i in (0..=top).rev() {
        r = r.double();
        let a = d1[i];
        if a > 0 {
            r += tg[(a / 2) as usize];
        } else if a < 0 {
            r -= tg[(-a / 2) as usize];
        }
        let b = d2[i];
        if b > 0 {
            r += tq[(b / 2) as usize];
        } else if b < 0 {
            r -= tq[(-b / 2) as usize];
        }
    }
    r
}

/// ECDSA verification of the SHA-256 digest `z` (P-256's field size: used as it is) under
/// the public key `q`: `r == x(u1·G + u2·Q) mod n` with `w = s⁻¹, u1 = z·w, u2 = r·w`.
/// The signature's `r` and `s` are non-zero scalars below n by construction.
pub fn verify_prehashed(q: &ProjectivePoint, z: &FieldBytes, sig: &Signature) -> bool {
    let z = <Scalar as Reduce<U256>>::reduce_bytes(z);
    let (r, s) = sig.split_scalars();
    let s_inv = *s.invert_vartime();
    let u1 = z * s_inv;
    let u2 = *r * s_inv;
    let x = lincomb_vartime(&u1, q, &u2).to_affine().x();
    *r == <Scalar as Reduce<U256>>::reduce_bytes(&x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::{Signer, Verifier};
    use p256::ecdsa::{SigningKey, VerifyingKey};
    use sha2::Digest;

    /// A deterministic stream of scalars (no RNG needed for a reproducible test).
    fn scalars(n: usize) -> Vec<Scalar> {
        let mut h = sha2::Sha256::digest(b"mfa_auth p256 vartime").to_vec();
        (0..n)
            .map(|_| {
                h = sha2::Sha256::digest(&h).to_vec();
                <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::clone_from_slice(&h))
            })
            .collect()
    }

    #[test]
    fn wnaf_digits_rebuild_the_scalar() {
        let mut edge = vec![Scalar::ZERO, Scalar::ONE, -Scalar::ONE, Scalar::from(0x7fu64), Scalar::from(u64::MAX)];
        edge.extend(scalars(200));
        for k in edge {
            for w in [W_G, W_Q] {
                let d = wnaf(&k, w);
                let mut acc = Scalar::ZERO;
                for &digit in d.iter().rev() {
                    acc = acc.double();
                    if digit >= 0 {
                        acc += Scalar::from(digit as u64);
                    } else {
                        acc -= Scalar::from((-digit) as u64);
                    }
                    assert!(digit == 0 || (digit % 2 != 0 && i32::from(digit).abs() < 1 << (w - 1)));
                }
                assert_eq!(acc, k);
            }
        }
    }

    #[test]
    fn lincomb_matches_two_constant_time_multiplications() {
        let s = scalars(120);
        let mut cases: Vec<(Scalar, Scalar, Scalar)> = s.chunks(3).map(|c| (c[0], c[1], c[2])).collect();
        cases.push((Scalar::ZERO, Scalar::ONE, Scalar::ONE));
        cases.push((Scalar::ONE, Scalar::ZERO, Scalar::ONE));
        cases.push((-Scalar::ONE, Scalar::ONE, Scalar::ONE)); // Q = G: the sum is the identity
        cases.push((Scalar::ONE, Scalar::ONE, Scalar::ONE)); // Q = G: a doubling
        for (u1, u2, k) in cases {
            let q = ProjectivePoint::GENERATOR * k;
            let expected = ProjectivePoint::GENERATOR * u1 + q * u2;
            assert_eq!(lincomb_vartime(&u1, &q, &u2).to_affine(), expected.to_affine());
        }
    }

    #[test]
    fn same_verdicts_as_p256() {
        let keys = scalars(40);
        let mut checked = 0;
        for (i, k) in keys.iter().enumerate() {
            let sk = SigningKey::from_bytes(&k.to_repr()).expect("a non-zero scalar is a signing key");
            let vk = VerifyingKey::from(&sk);
            let q = ProjectivePoint::from(*vk.as_affine());
            let msg = format!("message {i}");
            let sig: Signature = sk.sign(msg.as_bytes());
            let digest = FieldBytes::from(<[u8; 32]>::from(sha2::Sha256::digest(msg.as_bytes())));
            // The signature, its high-S twin, another message, another key, r and s altered.
            let (r, s) = sig.split_scalars();
            let high_s = Signature::from_scalars(*r, -*s).expect("non-zero");
            let other = FieldBytes::from(<[u8; 32]>::from(sha2::Sha256::digest(b"another message")));
            let other_key = ProjectivePoint::GENERATOR * keys[(i + 1) % keys.len()];
            let r1 = Signature::from_scalars(*r + Scalar::ONE, *s).expect("non-zero");
            let s1 = Signature::from_scalars(*r, *s + Scalar::ONE).expect("non-zero");
            for (key, z, sg, valid) in [
                (q, digest, sig, true),
                (q, digest, high_s, true),
                (q, other, sig, false),
                (other_key, digest, sig, false),
                (q, digest, r1, false),
                (q, digest, s1, false),
            ] {
                let reference = VerifyingKey::from_affine(key.to_affine())
                    .map(|vk| {
                        use p256::ecdsa::signature::hazmat::PrehashVerifier;
                        vk.verify_prehash(&z, &sg).is_ok()
                    })
                    .unwrap_or(false);
                assert_eq!(reference, valid, "p256's verdict, key {i}");
                assert_eq!(verify_prehashed(&key, &z, &sg), valid, "key {i}");
            }
            assert!(verify_prehashed(&q, &digest, &sig));
            assert!(vk.verify(msg.as_bytes(), &sig).is_ok());
            checked += 1;
        }
        assert_eq!(checked, keys.len());
    }
}
