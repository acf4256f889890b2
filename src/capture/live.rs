//! Live capture from a network interface through libpcap (the `pcap` crate).
//!
//! The handle is opened with a short read timeout (100 ms), which bounds how long the
//! kernel holds packets back, so that findings appear while the user clicks; the capture
//! thread polls the descriptor itself, so it notices a stop request and keeps flushing its
//! batches even when the interface is quiet. Timestamps are requested in nanoseconds.
//!
//! Immediate mode is opt-in (`LiveConfig::immediate`): on Linux it makes libpcap fall back
//! from TPACKET_V3 (variable-size packets packed in blocks) to TPACKET_V2, whose ring has
//! one fixed slot per packet sized for the snaplen — about 120 slots in 32 MiB at the
//! default snaplen — and under load that ring overflows long before the CPU is busy
//! (measured in benches/live.sh: kernel drops from 1,000 requests/s).
//!
//! Errors name the interface and, for the common failures (missing capabilities, unknown
//! interface, bad filter), say what to do.

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use pcap::{Active, Capture, Device};

use super::{Frame, FrameRef};
use crate::time::Timestamp;

/// The filter used when the user gives none: only TCP can carry HTTP/1.x.
pub const DEFAULT_FILTER: &str = "tcp";
/// Bytes kept of each packet unless `--snaplen` says otherwise: whole jumbo frames and
/// GSO/GRO super-packets on loopback.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// How a live capture is opened.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub interface: String,
    /// BPF expression (tcpdump syntax).
    pub filter: String,
    pub snaplen: u32,
    pub promiscuous: bool,
    /// Deliver each packet at once instead of within the read timeout (see the module doc
    /// for its cost on Linux).
    pub immediate: bool,
    /// Kernel buffer size in bytes: room for bursts while the capture thread is busy.
    pub buffer_bytes: u32,
    /// How long a read waits for a packet before returning empty-handed.
    pub read_timeout: Duration,
}

impl LiveConfig {
    pub fn new(interface: impl Into<String>) -> LiveConfig {
        LiveConfig {
            interface: interface.into(),
            filter: DEFAULT_FILTER.into(),
            snaplen: DEFAULT_SNAPLEN,
            promiscuous: false,
            immediate: false,
            buffer_bytes: 32 * 1024 * 1024,
            read_timeout: Duration::from_millis(100),
        }
    }
}

/// Why live capture could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "capturing on {interface} is not permitted ({detail}); run as root, or give the binary the capabilities once: sudo setcap cap_net_raw,cap_net_admin=eip {binary}"
    )]
    Permission {
        interface: String,
        detail: String,
        binary: String,
    },
    #[error(
        "no interface named {name:?}; interfaces here: {available} (see `wirelint interfaces`)"
    )]
    NoSuchInterface { name: String, available: String },
    #[error("invalid capture filter {filter:?} on {interface}: {detail}")]
    Filter {
        interface: String,
        filter: String,
        detail: String,
    },
    #[error("cannot capture on {interface}: {detail}")]
    Open { interface: String, detail: String },
    #[error("reading packets from {interface} failed: {detail}")]
    Read { interface: String, detail: String },
    #[error("cannot list the network interfaces: {0}")]
    List(String),
}

/// One network interface as `wirelint interfaces` lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Interface {
    pub name: String,
    pub description: Option<String>,
    pub addresses: Vec<IpAddr>,
    pub up: bool,
    pub running: bool,
    pub loopback: bool,
    pub wireless: bool,
}

/// The interfaces libpcap can capture on (including the pseudo-interface `any` on Linux).
pub fn interfaces() -> Result<Vec<Interface>, LiveError> {
    let devices = Device::list().map_err(|e| LiveError::List(e.to_string()))?;
    Ok(devices
        .into_iter()
        .map(|d| Interface {
            addresses: d.addresses.iter().map(|a| a.addr).collect(),
            up: d.flags.is_up(),
            running: d.flags.is_running(),
            loopback: d.flags.is_loopback(),
            wireless: d.flags.is_wireless(),
            name: d.name,
            description: d.desc,
        })
        .collect())
}

/// Counters libpcap keeps for the handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KernelStats {
    /// Packets that passed the filter (as far as the kernel counted them).
    pub received: u64,
    /// Dropped because the kernel buffer was full: wirelint did not read fast enough.
    pub dropped: u64,
    /// Dropped by the interface or its driver.
    pub interface_dropped: u64,
}

/// An open live capture.
pub struct LiveCapture {
    cap: Capture<Active>,
    interface: String,
    linktype: u32,
    frames: u64,
    /// How long to wait for a packet once libpcap's buffer is empty.
    poll_ms: i32,
    /// The last read found libpcap's buffer empty: wait on the descriptor before reading.
    drained: bool,
}

/// Whether a libpcap message means the process lacks the capture privileges.
fn is_permission_error(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("permission") || d.contains("not permitted")
}

impl LiveCapture {
    /// Opens `cfg.interface`, applies the filter, and is ready to read.
    pub fn open(cfg: &LiveConfig) -> Result<LiveCapture, LiveError> {
        let interface = cfg.interface.clone();
        let open_err = |e: pcap::Error| {
            let detail = e.to_string();
            if is_permission_error(&detail) {
                LiveError::Permission {
                    interface: interface.clone(),
                    detail,
                    binary: std::env::current_exe()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|_| "$(command -v wirelint)".into()),
                }
            } else if detail.to_ascii_lowercase().contains("no such device") {
                no_such_interface(&interface)
            } else {
                LiveError::Open {
                    interface: interface.clone(),
                    detail,
                }
            }
        };
        // Named before opening: libpcap's own message for a missing device varies by
        // platform and does not say which interfaces exist.
        if let Ok(list) = Device::list()
            && !list.iter().any(|d| d.name == cfg.interface)
        {
            return Err(no_such_interface(&cfg.interface));
        }
        let timeout_ms = i32::try_from(cfg.read_timeout.as_millis())
            .unwrap_or(i32::MAX)
            .max(1);
        let inactive = Capture::from_device(cfg.interface.as_str())
            .map_err(open_err)?
            .promisc(cfg.promiscuous)
            .snaplen(i32::try_from(cfg.snaplen).unwrap_or(i32::MAX))
            .immediate_mode(cfg.immediate)
            .timeout(timeout_ms)
            .buffer_size(i32::try_from(cfg.buffer_bytes).unwrap_or(i32::MAX))
            .precision(pcap::Precision::Nano);
        let mut cap = inactive.open().map_err(open_err)?;
        cap.filter(&cfg.filter, true)
            .map_err(|e| LiveError::Filter {
                interface: cfg.interface.clone(),
                filter: cfg.filter.clone(),
                detail: e.to_string(),
            })?;
        // The `any` pseudo-interface keeps libpcap's default cooked header (LINUX_SLL on
        // libpcap 1.10, LINUX_SLL2 where newer versions default to it; both decode).
        // Switching to SLL2 after activation loses the packets of the first ring block
        // on libpcap 1.10 (measured: the first connection after start went missing).
        let linktype = u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX);
        // Non-blocking, with our own poll: on Linux, libpcap in immediate mode waits for a
        // packet however long it takes, ignoring the read timeout, and a stop request must
        // not wait for traffic.
        let cap = cap.setnonblock().map_err(|e| LiveError::Open {
            interface: cfg.interface.clone(),
            detail: e.to_string(),
        })?;
        Ok(LiveCapture {
            cap,
            interface: cfg.interface.clone(),
            linktype,
            frames: 0,
            poll_ms: timeout_ms,
            drained: false,
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// How long the kernel may hold packets back before handing them over.
    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.poll_ms).unwrap_or(100))
    }

    /// LINKTYPE_* of the handle (LINUX_SLL or LINUX_SLL2 for `any`).
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// The next packet, or `None` when the read timeout expired first. Frames are numbered
    /// from 1 in the order they were read.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, LiveError> {
        if self.drained {
            if !self.wait_readable()? {
                return Ok(None);
            }
            self.drained = false;
        }
        match self.cap.next_packet() {
            Ok(packet) => {
                self.frames += 1;
                let h = packet.header;
                // Nanosecond precision was asked for: `tv_usec` holds nanoseconds.
                let nanos = u32::try_from(h.ts.tv_usec).unwrap_or(0).min(999_999_999);
                Ok(Some(Frame {
                    id: FrameRef {
                        file: 0,
                        number: self.frames,
                    },
                    ts: Timestamp::from_secs_nanos(h.ts.tv_sec, nanos),
                    linktype: self.linktype,
                    data: packet.data,
                    orig_len: h.len,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => {
                self.drained = true;
                Ok(None)
            }
            Err(e) => Err(LiveError::Read {
                interface: self.interface.clone(),
                detail: e.to_string(),
            }),
        }
    }

    /// Waits up to the read timeout for the descriptor to have packets; false on timeout.
    fn wait_readable(&self) -> Result<bool, LiveError> {
        let mut fds = libc::pollfd {
            fd: self.cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `fds` is one valid pollfd that outlives the call; the descriptor belongs
        // to the open handle.
        let n = unsafe { libc::poll(&raw mut fds, 1, self.poll_ms) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            // A signal (the user's Ctrl-C) interrupts the wait: the caller checks its flag.
            if err.kind() == std::io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(LiveError::Read {
                interface: self.interface.clone(),
                detail: err.to_string(),
            });
        }
        if fds.revents & libc::POLLNVAL != 0 {
            return Err(LiveError::Read {
                interface: self.interface.clone(),
                detail: "the capture descriptor was closed".into(),
            });
        }
        // POLLERR/POLLHUP count as readable: libpcap's read then says what went wrong
        // (e.g. "The interface went down").
        Ok(n > 0)
    }

    /// libpcap's counters for this handle.
    pub fn stats(&mut self) -> Option<KernelStats> {
        self.cap.stats().ok().map(|s| KernelStats {
            received: u64::from(s.received),
            dropped: u64::from(s.dropped),
            interface_dropped: u64::from(s.if_dropped),
        })
    }
}

fn no_such_interface(name: &str) -> LiveError {
    let available = interfaces()
        .map(|l| {
            l.iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|e| format!("(unknown: {e})"));
    LiveError::NoSuchInterface {
        name: name.into(),
        available,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_messages_are_recognised() {
        assert!(is_permission_error(
            "You don't have permission to perform this capture on that device (socket: Operation not permitted)"
        ));
        assert!(!is_permission_error("No such device exists"));
    }

    #[test]
    fn an_unknown_interface_is_named_with_the_ones_that_exist() {
        let err = LiveCapture::open(&LiveConfig::new("wirelint-no-such-if0"))
            .err()
            .expect("no such interface");
        let text = err.to_string();
        assert!(text.contains("wirelint-no-such-if0"), "{text}");
        assert!(
            matches!(err, LiveError::NoSuchInterface { .. }),
            "expected NoSuchInterface, got {text}"
        );
    }
}
