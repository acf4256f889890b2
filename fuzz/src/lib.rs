//! Helpers shared by the fuzz targets: a scratch file per process for the readers that
//! take paths, a byte cursor for structured inputs, and positions for the http stage.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use wirelint::capture::{FrameRef, Pos};
use wirelint::rules::RuleSet;
use wirelint::time::Timestamp;

/// Writes `data` to this process's scratch capture file (in /dev/shm when there is one, so
/// nothing touches the disk) and returns its path. Each call overwrites the last.
pub fn scratch_file(data: &[u8]) -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    let path = PATH.get_or_init(|| {
        let dir = PathBuf::from("/dev/shm");
        let dir = if dir.is_dir() {
            dir
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("wirelint-fuzz-{}.cap", std::process::id()))
    });
    let mut f = std::fs::File::create(path).expect("scratch file");
    f.write_all(data).expect("writing the scratch file");
    path.clone()
}

/// Reads a fuzz input front to back; past the end everything reads as zero / empty.
pub struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// A position at frame `n` (1-based), `n` milliseconds into the capture.
pub fn pos(n: u64) -> Pos {
    Pos {
        frame: FrameRef { file: 0, number: n },
        ts: Timestamp(1_710_237_600_000_000_000 + n as i64 * 1_000_000),
        order: n,
    }
}

/// Opens `file` as a capture and walks every frame (with a capture filter when the
/// file's last byte is odd, so the per-link-type BPF compilation is fuzzed too).
pub fn read_all(file: &[u8]) {
    let path = scratch_file(file);
    let Ok(set) = wirelint::capture::CaptureSet::open(&[path]) else {
        return;
    };
    let filter = file
        .last()
        .is_some_and(|b| b & 1 == 1)
        .then_some("tcp port 80");
    let mut seen = 0usize;
    let _ = set.for_each_frame(
        filter,
        |frame| {
            seen = seen.wrapping_add(frame.data.len() + frame.is_truncated() as usize);
        },
        |_| {},
    );
    std::hint::black_box(seen);
}

/// The built-in rules, compiled once per process.
pub fn builtin_rules() -> Arc<RuleSet> {
    static RULES: OnceLock<Arc<RuleSet>> = OnceLock::new();
    Arc::clone(
        RULES.get_or_init(|| Arc::new(RuleSet::builtin().expect("the built-in rules compile"))),
    )
}
