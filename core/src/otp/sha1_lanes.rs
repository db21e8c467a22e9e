//! SHA-1's compression function over several independent states at once.
//!
//! A TOTP check of window 1 compresses 8 blocks: the key's inner and outer pads (2
//! independent states), then for each of 3 steps an inner block and an outer block (3
//! independent inner states, then 3 independent outer ones). With SHA-NI, one compression
//! is a chain of 20 `sha1rnds4` instructions, each waiting for the previous one, so the
//! processor idles between them; independent compressions called one after the other do
//! not overlap either (each call's chain fills the instruction window). Interleaving the
//! lanes' instructions group by group keeps the SHA unit busy: on the EPYC (Zen) CI machine
//! 3 lanes cost about 1.5 compressions instead of 3 (`cargo run --release --example
//! totp_micro` prints the core's ns per verification).
//!
//! Without SHA-NI (or off x86-64) each lane goes through the `sha1` crate's compression
//! function in turn. The results are identical either way; `tests` and the property
//! tests compare every lane against the `sha1` crate.
//!
//! Pure Rust, no pgrx. The work done does not depend on the data (no secret-dependent
//! branch or index), as with the `sha1` crate.

/// Compresses `blocks[l]` into `states[l]` for every lane `l`, as
/// `sha1::block_api::compress(&mut states[l], &[blocks[l]])` would.
#[inline]
pub fn compress<const L: usize>(states: &mut [[u32; 5]; L], blocks: &[[u8; 64]; L]) {
    #[cfg(target_arch = "x86_64")]
    if sha_ni() {
        // SAFETY: the CPU has every feature `x86::compress` is compiled for (checked just now).
        unsafe { x86::compress(states, blocks) };
        return;
    }
    portable(states, blocks);
}

/// One lane after the other through the `sha1` crate (which picks its own backend).
fn portable<const L: usize>(states: &mut [[u32; 5]; L], blocks: &[[u8; 64]; L]) {
    for (state, block) in states.iter_mut().zip(blocks) {
        sha1::block_api::compress(state, std::slice::from_ref(block));
    }
}

/// Whether this CPU runs the interleaved SHA-NI path (std caches the CPUID answers).
#[cfg(target_arch = "x86_64")]
#[inline]
fn sha_ni() -> bool {
    std::is_x86_feature_detected!("sha")
        && std::is_x86_feature_detected!("sse2")
        && std::is_x86_feature_detected!("ssse3")
        && std::is_x86_feature_detected!("sse4.1")
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    /// Four rounds: `sha1nexte` derives E from the previous ABCD and adds the schedule words.
    macro_rules! rounds4 {
        ($abcd:expr, $e:expr, $w:expr, $f:literal) => {
            _mm_sha1rnds4_epu32($abcd, _mm_sha1nexte_epu32($e, $w), $f)
        };
    }

    /// The next four schedule words from the previous sixteen.
    macro_rules! schedule {
        ($w0:expr, $w1:expr, $w2:expr, $w3:expr) => {
            _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32($w0, $w1), $w2), $w3)
        };
    }

    /// The `sha1` crate's SHA-NI compression (Intel's published sequence) with each step
    /// done for every lane before the next step, so the lanes' dependency chains overlap.
    /// Loops over `L` are unrolled by the compiler (`L` is a constant).
    ///
    /// # Safety
    /// The CPU must support SHA, SSE2, SSSE3 and SSE4.1.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn compress<const L: usize>(states: &mut [[u32; 5]; L], blocks: &[[u8; 64]; L]) {
        let bswap = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0A0B_0C0D_0E0F);
        let zero = _mm_setzero_si128();
        let (mut abcd, mut e, mut h0, mut h1) = ([zero; L], [zero; L], [zero; L], [zero; L]);
        let mut w = [[zero; 5]; L];
        for l in 0..L {
            // SAFETY (loads and stores here): unaligned 16-byte accesses within
            // `states[l]` (20 bytes) and `blocks[l]` (64 bytes).
            abcd[l] = _mm_shuffle_epi32(_mm_loadu_si128(states[l].as_ptr().cast()), 0b0001_1011);
            e[l] = _mm_set_epi32(states[l][4] as i32, 0, 0, 0);
            let p: *const __m128i = blocks[l].as_ptr().cast();
            for (j, word) in w[l].iter_mut().take(4).enumerate() {
                *word = _mm_shuffle_epi8(_mm_loadu_si128(p.add(j)), bswap);
            }
            h0[l] = abcd[l];
            h1[l] = _mm_sha1rnds4_epu32(h0[l], _mm_add_epi32(e[l], w[l][0]), 0);
        }
        for l in 0..L {
            h0[l] = rounds4!(h1[l], h0[l], w[l][1], 0);
        }
        for l in 0..L {
            h1[l] = rounds4!(h0[l], h1[l], w[l][2], 0);
        }
        for l in 0..L {
            h0[l] = rounds4!(h1[l], h0[l], w[l][3], 0);
        }
        // Groups 4..20: schedule four words into w[g % 5] from the four before, then four
        // rounds; the round function changes every 5 groups, the registers alternate.
        macro_rules! group {
            ($g:literal, $f:literal) => {
                for l in 0..L {
                    let wl = &mut w[l];
                    wl[$g % 5] = schedule!(wl[($g + 1) % 5], wl[($g + 2) % 5], wl[($g + 3) % 5], wl[($g + 4) % 5]);
                    if $g % 2 == 0 {
                        h1[l] = rounds4!(h0[l], h1[l], wl[$g % 5], $f);
                    } else {
                        h0[l] = rounds4!(h1[l], h0[l], wl[$g % 5], $f);
                    }
                }
            };
        }
        group!(4, 0);
        group!(5, 1);
        group!(6, 1);
        group!(7, 1);
        group!(8, 1);
        group!(9, 1);
        group!(10, 2);
        group!(11, 2);
        group!(12, 2);
        group!(13, 2);
        group!(14, 2);
        group!(15, 3);
        group!(16, 3);
        group!(17, 3);
        group!(18, 3);
        group!(19, 3);
        for l in 0..L {
            let abcd = _mm_shuffle_epi32(_mm_add_epi32(abcd[l], h0[l]), 0b0001_1011);
            let e = _mm_sha1nexte_epu32(h1[l], e[l]);
            _mm_storeu_si128(states[l].as_mut_ptr().cast(), abcd);
            states[l][4] = _mm_extract_epi32(e, 3) as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_by_one<const L: usize>(states: &[[u32; 5]; L], blocks: &[[u8; 64]; L]) -> [[u32; 5]; L] {
        let mut out = *states;
        for (s, b) in out.iter_mut().zip(blocks) {
            sha1::block_api::compress(s, std::slice::from_ref(b));
        }
        out
    }

    fn check<const L: usize>(seed: u64) {
        let mut x = seed;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut states = [[0u32; 5]; L];
        let mut blocks = [[0u8; 64]; L];
        for l in 0..L {
            states[l].iter_mut().for_each(|w| *w = next() as u32);
            blocks[l].iter_mut().for_each(|b| *b = next() as u8);
        }
        let want = one_by_one(&states, &blocks);
        let mut got = states;
        compress(&mut got, &blocks);
        assert_eq!(got, want, "{L} lanes, seed {seed}");
        #[cfg(target_arch = "x86_64")]
        if sha_ni() {
            let mut got = states;
            // SAFETY: sha_ni() checked every feature it needs.
            unsafe { x86::compress(&mut got, &blocks) };
            assert_eq!(got, want, "{L} lanes, seed {seed}, SHA-NI");
        }
    }

    #[test]
    fn every_lane_equals_the_sha1_crate() {
        for seed in 1..500 {
            check::<1>(seed);
            check::<2>(seed);
            check::<3>(seed);
            check::<4>(seed);
            check::<7>(seed);
        }
    }

    #[test]
    fn the_empty_message_digest() {
        // SHA-1("") = da39a3ee 5e6b4b0d 3255bfef 95601890 afd80709, in every lane.
        let mut block = [0u8; 64];
        block[0] = 0x80;
        let mut states = [[0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]; 3];
        compress(&mut states, &[block; 3]);
        for s in states {
            assert_eq!(s, [0xda39_a3ee, 0x5e6b_4b0d, 0x3255_bfef, 0x9560_1890, 0xafd8_0709]);
        }
    }
}
