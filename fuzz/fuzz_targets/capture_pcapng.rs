//! The pcapng reader on any file that starts with a Section Header Block type (the byte
//! order magic and everything after are the fuzzer's).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let mut file = data.to_vec();
    file[..4].copy_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
    wirelint_fuzz::read_all(&file);
});
