#![no_main]
//! Any bytes as 1 to 4 lanes of (state, block): the side-by-side compression (SHA-NI when the
//! CPU has it) equals the `sha1` crate's, lane by lane.
use libfuzzer_sys::fuzz_target;
use mfa_auth_core::otp::sha1_lanes;

fn lanes<const L: usize>(data: &[u8]) {
    let mut states = [[0u32; 5]; L];
    let mut blocks = [[0u8; 64]; L];
    let mut bytes = data.iter().copied().cycle();
    for l in 0..L {
        for w in states[l].iter_mut() {
            *w = u32::from_le_bytes([0; 4].map(|_| bytes.next().unwrap_or(0)));
        }
        blocks[l].iter_mut().for_each(|b| *b = bytes.next().unwrap_or(0));
    }
    let mut want = states;
    for (s, b) in want.iter_mut().zip(&blocks) {
        sha1::block_api::compress(s, std::slice::from_ref(b));
    }
    sha1_lanes::compress(&mut states, &blocks);
    assert_eq!(states, want);
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    match n % 4 {
        0 => lanes::<1>(rest),
        1 => lanes::<2>(rest),
        2 => lanes::<3>(rest),
        _ => lanes::<4>(rest),
    }
});
