//! The masking of secrets in the packets the store keeps: header lines followed across
//! packet boundaries, per direction, and the values of sensitive fields overwritten with
//! `*` of the same length (see the module above for why in place).

use crate::redact::Redactor;

/// Where a line of header text is, for the masking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineState {
    /// At the start of a line or in a field name (its bytes are in `name`).
    Name,
    /// In a field's value; `mask` for a sensitive field, `kept` while its first word
    /// (an authorization scheme) is kept.
    Value { mask: bool, kept: KeepWord },
    /// A line that cannot be a header field (too long a name): until its end.
    Skip,
    /// Unknown position (earlier bytes were not kept): everything masked up to a line end.
    MaskToEol,
}

/// The progress through the first word of an Authorization value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeepWord {
    /// Leading spaces, then the word.
    Before,
    In,
    Done,
}

/// Longest field name looked at.
pub(super) const NAME_MAX: usize = 64;

/// The masking of one direction of a connection, across packets.
#[derive(Clone, Debug)]
pub(super) struct LineMasker {
    state: LineState,
    name: Vec<u8>,
}

impl LineMasker {
    pub(super) fn new(whole: bool) -> Self {
        LineMasker {
            state: if whole {
                LineState::Name
            } else {
                LineState::MaskToEol
            },
            name: Vec::new(),
        }
    }

    /// Masks sensitive values in `bytes`, the next bytes of this direction; returns true
    /// when the line just finished was the HTTP/2 preface.
    pub(super) fn apply(&mut self, redactor: &Redactor, bytes: &mut [u8]) -> bool {
        let mut h2 = false;
        for b in bytes.iter_mut() {
            match self.state {
                LineState::Name => match *b {
                    b'\n' => {
                        h2 |= self.name.starts_with(b"PRI * HTTP/2.0");
                        self.name.clear();
                    }
                    b':' => {
                        let name = String::from_utf8_lossy(&self.name);
                        let name = name.trim();
                        let mask = redactor.is_sensitive_header(name);
                        let kept = if name.to_ascii_lowercase().contains("authorization") {
                            KeepWord::Before
                        } else {
                            KeepWord::Done
                        };
                        self.name.clear();
                        self.state = LineState::Value { mask, kept };
                    }
                    _ if self.name.len() < NAME_MAX => self.name.push(*b),
                    _ => {
                        self.name.clear();
                        self.state = LineState::Skip;
                    }
                },
                LineState::Value { mask, kept } => {
                    if *b == b'\n' {
                        self.state = LineState::Name;
                    } else if mask && *b != b'\r' {
                        let kept = match (kept, *b == b' ' || *b == b'\t') {
                            (KeepWord::Before, true) => KeepWord::Before,
                            (KeepWord::Before | KeepWord::In, false) => KeepWord::In,
                            _ => KeepWord::Done,
                        };
                        if kept == KeepWord::Done && *b != b' ' && *b != b'\t' {
                            *b = b'*';
                        }
                        self.state = LineState::Value { mask, kept };
                    }
                }
                LineState::Skip => {
                    if *b == b'\n' {
                        self.state = LineState::Name;
                    }
                }
                LineState::MaskToEol => {
                    if *b == b'\n' {
                        self.state = LineState::Name;
                    } else if *b != b'\r' {
                        *b = b'*';
                    }
                }
            }
        }
        h2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(chunks: &[&[u8]]) -> String {
        let r = Redactor::new(&["X-Api-Key".to_string()]);
        let mut m = LineMasker::new(true);
        let mut out = Vec::new();
        for c in chunks {
            let mut c = c.to_vec();
            m.apply(&r, &mut c);
            out.extend(c);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn sensitive_values_are_masked_in_place_across_packets() {
        let got = masked(&[
            b"GET / HTTP/1.1\r\nAuthoriz",
            b"ation: Bearer abc",
            b"def\r\nCookie: a=1\r\nX-Api-Key: k\r\nHost: h\r\n\r\n",
        ]);
        assert_eq!(
            got,
            "GET / HTTP/1.1\r\nAuthorization: Bearer ******\r\nCookie: ***\r\n\
             X-Api-Key: *\r\nHost: h\r\n\r\n"
        );
    }

    #[test]
    fn an_unknown_start_is_masked_to_the_line_end() {
        let r = Redactor::new(&[]);
        let mut m = LineMasker::new(false);
        let mut b = b"secret-tail\r\nHost: h\r\n".to_vec();
        m.apply(&r, &mut b);
        assert_eq!(b, b"***********\r\nHost: h\r\n".to_vec());
    }
}
