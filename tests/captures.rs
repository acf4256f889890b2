use wirelint::capture::{CaptureSet, Pos};
use wirelint::decode::Decoder;
use wirelint::reassembly::{CloseReason, FlowTable, Piece, ReassemblyConfig, StreamConsumer};

struct Dbg;
impl StreamConsumer for Dbg {
    type Sink = ();
    type Config = ();
    fn open(_: (), ends: [std::net::SocketAddr; 2], first: Pos, hint: Option<usize>, mid: [bool; 2]) -> Self {
        println!("open {ends:?} {:?} {hint:?} {mid:?}", first.frame);
        Dbg
    }
    fn piece(&mut self, dir: usize, piece: Piece<'_>, pos: Pos, _: &mut ()) {
        let s = match piece {
            Piece::Data(d) => format!("data {} {:?}", d.len(), String::from_utf8_lossy(&d[..d.len().min(30)])),
            p => format!("{p:?}"),
        };
        println!("  dir {dir} frame {} {s}", pos.frame.number);
    }
    fn close(&mut self, fin: [bool; 2], r: CloseReason, _: Pos, _: &mut ()) {
        println!("close {fin:?} {r:?}");
    }
    fn is_done(&self) -> bool {
        false
    }
    fn buffered(&self) -> usize {
        0
    }
}

#[test]
fn debug_pieces() {
    let name = std::env::var("DBG_CAPTURE").unwrap_or_default();
    if name.is_empty() {
        return;
    }
    let set = CaptureSet::open(&[name.into()]).unwrap();
    let mut dec = Decoder::new();
    let mut table: FlowTable<Dbg> = FlowTable::new(ReassemblyConfig::default(), ());
    let mut order = 0;
    set.for_each_frame(None, |f| {
        order += 1;
        if let Some(seg) = dec.decode(f) {
            table.segment(&seg, order, &mut ());
        }
    }, |_| {}).unwrap();
    table.finish(u64::MAX, &mut ());
    let mut dec = Decoder::new();
    let mut table: FlowTable<wirelint::http::HttpConnection> = FlowTable::new(ReassemblyConfig::default(), wirelint::http::HttpConfig::default());
    let mut out = wirelint::http::HttpOutput::default();
    let mut order = 0;
    set.for_each_frame(None, |f| {
        order += 1;
        if let Some(seg) = dec.decode(f) {
            table.segment(&seg, order, &mut out);
            for e in out.exchanges.drain(..) {
                println!("frame {order}: ex {} req {:?} resp {:?} {:?}", e.index, e.request.as_ref().map(|m| (m.target(), m.head_frame.number)), e.response.as_ref().map(|m| (m.status(), m.head_frame.number)), e.anomaly_names());
            }
        }
    }, |_| {}).unwrap();
    table.finish(u64::MAX, &mut out);
    for e in out.exchanges.drain(..) {
        println!("end: ex {} req {:?} resp {:?} {:?}", e.index, e.request.as_ref().map(|m| (m.target(), m.head_frame.number)), e.response.as_ref().map(|m| (m.status(), m.head_frame.number)), e.anomaly_names());
    }
}
