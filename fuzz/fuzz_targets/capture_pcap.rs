//! The legacy pcap reader on any file whose first four bytes are a pcap magic (µs or ns,
//! either byte order, or the "modified" format: chosen by the input's first byte).
#![no_main]

use libfuzzer_sys::fuzz_target;

const MAGICS: [[u8; 4]; 5] = [
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x34, 0xcd, 0xb2, 0xa1],
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let mut file = data.to_vec();
    // Seeds keep their own magic; otherwise the first byte picks one.
    if !MAGICS.iter().any(|m| file.starts_with(m)) {
        file[..4].copy_from_slice(&MAGICS[usize::from(data[0]) % MAGICS.len()]);
    }
    wirelint_fuzz::read_all(&file);
});
