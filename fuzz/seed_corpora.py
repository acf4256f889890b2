#!/usr/bin/env python3
"""Seeds fuzz/corpus/TARGET/ from the project's own data (standard library only):

- capture_pcap, capture_pcapng, pipeline: the files in captures/;
- decode: each classic pcap in captures/ as the decode target's input (a link type
  selector, then frames as u16 length + bytes);
- reassembly: the TCP segments of each capture as the reassembly target's records;
- http_head: every example message of every rule file, and every HTTP head in the
  captures' TCP payloads;
- http_chunked: chunked bodies from the rule examples, plus hand-written edge cases;
- session: each TCP connection of captures/ and captures/tls/ as the session target's
  records (payloads by direction, the client known from the SYN);
- har: the HAR files in captures/har/;
- rule_toml: rules/**/*.toml; config_toml: a few wirelint.toml files.

Run from anywhere: python3 fuzz/seed_corpora.py. Existing corpus files are kept (libFuzzer
adds to these directories as it runs); seeds are named by content hash.
"""

import hashlib
import pathlib
import re
import struct
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
CAPTURES = ROOT / "captures"
RULES = ROOT / "rules"

# Must match LINKTYPES in fuzz_targets/decode.rs.
DECODE_LINKTYPES = [0, 1, 12, 14, 101, 108, 113, 129, 228, 229, 239, 276]
# Must match BASE in fuzz_targets/reassembly.rs.
REASSEMBLY_BASE = [0xFFFFFF00, 0x1000]


def put(target, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def pcap_frames(data):
    """(linktype, [(ts_ns, frame bytes)]) of a classic pcap file, or None."""
    if len(data) < 24:
        return None
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return None
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(e + "I", data[20:24])[0] & 0xFFFF
    frames, pos = [], 24
    while pos + 16 <= len(data):
        secs, frac, caplen, _ = struct.unpack(e + "IIII", data[pos : pos + 16])
        pos += 16
        frames.append((secs * 10**9 + frac * (1 if nanos else 1000), data[pos : pos + caplen]))
        pos += caplen
    return linktype, frames


def ip_of(linktype, frame):
    """The IP packet in a frame for the link types the captures use, else None."""
    if linktype == 1:
        off, et = 12, None
        while off + 2 <= len(frame):
            et = struct.unpack(">H", frame[off : off + 2])[0]
            if et in (0x8100, 0x88A8):
                off += 4
                continue
            break
        if et in (0x0800, 0x86DD):
            return frame[off + 2 :]
        return None
    if linktype in (101, 228, 229, 12, 14):
        return frame
    if linktype in (0, 108):
        return frame[4:]
    if linktype == 113:
        return frame[16:]
    if linktype == 276:
        return frame[20:]
    return None


def tcp_of(ip):
    """(src, dst, seq, ack, flags, payload) of an unfragmented IPv4/IPv6 TCP packet."""
    if len(ip) < 20:
        return None
    if ip[0] >> 4 == 4:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if ip[9] != 6 or struct.unpack(">H", ip[6:8])[0] & 0x3FFF:
            return None
        src, dst, tcp = ip[12:16], ip[16:20], ip[ihl:total]
    elif ip[0] >> 4 == 6 and len(ip) >= 40:
        if ip[6] != 6:
            return None
        plen = struct.unpack(">H", ip[4:6])[0]
        src, dst, tcp = ip[8:24], ip[24:40], ip[40 : 40 + plen]
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq, ack = struct.unpack(">HHII", tcp[:12])
    doff = (tcp[12] >> 4) * 4
    return (src, sport), (dst, dport), seq, ack, tcp[13], tcp[doff:]


def tcp_segments(linktype, frames):
    """(ts, (src, dst, seq, ack, flags, payload)) of every TCP segment among `frames`."""
    for ts, f in frames:
        ip = ip_of(linktype, f)
        seg = ip and tcp_of(ip)
        if seg:
            yield ts, seg


def captures():
    for p in sorted(CAPTURES.glob("*.pcap*")):
        yield p, p.read_bytes()


def seed_captures():
    for p, data in captures():
        put("pipeline", data)
        put("capture_pcapng" if p.suffix == ".pcapng" else "capture_pcap", data)


def seed_decode_and_reassembly():
    heads = []
    for _, data in captures():
        parsed = pcap_frames(data)
        if not parsed:
            continue
        linktype, frames = parsed
        sel = DECODE_LINKTYPES.index(linktype) if linktype in DECODE_LINKTYPES else linktype
        if sel > 255:
            continue
        out = bytearray([sel])
        for _, f in frames[:64]:
            if len(f) < 0x4000:
                out += struct.pack("<H", len(f)) + f
        put("decode", bytes(out))

        # reassembly records; connections by first appearance, client = sender of the
        # first packet (or of a bare SYN)
        conns, isn, rec, last_ts = {}, {}, bytearray(), None
        for ts, seg in tcp_segments(linktype, frames):
            src, dst, seq, ack, flags, payload = seg
            key = frozenset((src, dst))
            if key not in conns:
                if len(conns) >= 4:
                    continue
                client = src if not (flags & 0x12 == 0x12) else dst
                conns[key] = (len(conns), client)
            idx, client = conns[key]
            d = 0 if src == client else 1
            isn.setdefault((idx, d), (seq - (1 if flags & 2 else 0)) & 0xFFFFFFFF)
            if payload[:16].split(b" ")[0] in (b"GET", b"POST", b"PUT", b"HTTP/1.1", b"HTTP/1.0"):
                heads.append((d, payload))
            step = 0 if last_ts is None else min(254, max(0, (ts - last_ts) // 10_000_000))
            last_ts = ts
            # The capture's sequence spaces are moved onto the target's bases: seq =
            # BASE[d] + (seq - ISN[d]), ack likewise in the other direction's space.
            s_rel = (seq - isn[(idx, d)]) & 0xFFFFFFFF
            a_rel = (ack - isn[(idx, 1 - d)]) & 0xFFFFFFFF if (idx, 1 - d) in isn else 0
            v6 = 32 if len(src[0]) == 16 else 0
            for i in range(0, max(1, len(payload)), 255):
                part = payload[i : i + 255]
                sr = (s_rel + i) & 0xFFFFFFFF
                if sr <= 0xFFFF and a_rel <= 0xFFFF:
                    rec += bytes([idx | d << 2 | v6, flags]) + struct.pack("<HH", sr, a_rel)
                else:
                    rec += bytes([idx | d << 2 | 8 | v6, flags]) + struct.pack(
                        "<II",
                        (REASSEMBLY_BASE[d] + sr) & 0xFFFFFFFF,
                        (REASSEMBLY_BASE[1 - d] + a_rel) & 0xFFFFFFFF,
                    )
                rec += bytes([0 if i else step, len(part)]) + part
        if rec:
            put("reassembly", bytes(rec))
    for d, payload in heads:
        put("http_head", bytes([d]) + payload[:4096])


def wire(text, raw):
    """As src/rules/examples.rs wire_bytes: head LF → CRLF unless raw."""
    b = text.encode()
    if raw:
        return b
    i = text.find("\n\n")
    head, body = (text[: i + 2], text[i + 2 :]) if i >= 0 else (text, "")
    return head.replace("\r", "").replace("\n", "\r\n").encode() + body.encode()


def seed_rules():
    for p in sorted(RULES.rglob("*.toml")):
        text = p.read_bytes()
        put("rule_toml", text)
        try:
            rule = tomllib.loads(text.decode())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        for ex in rule.get("example", []):
            items = ex.get("exchange") or [ex]
            for it in items:
                raw = it.get("raw", ex.get("raw", False))
                for side, key in ((0, "request"), (1, "response")):
                    if it.get(key):
                        msg = wire(it[key], raw)
                        put("http_head", bytes([side]) + msg)
                        head, _, body = msg.partition(b"\r\n\r\n")
                        if b"chunked" in head.lower() and body:
                            put("http_chunked", bytes([side ^ 1, 64]) + body)


CHUNKED = [
    b"5\r\nhello\r\n0\r\n\r\n",
    b"5;ext=1;q=\"x\"\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: v\r\nOther: w\r\n\r\n",
    b"5\nhello\n0\n\n",
    b"A\r\n0123456789\r\n0\r\n\r\n",
    b"ffffffffffffffff\r\nx\r\n",
    b"5\r\nhelloX\r\n0\r\n\r\n",
    b" 5\r\nhello\r\n0\r\n\r\n",
    b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    b"1f\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcbH\xcd\xc9\xc9W(\xcf/\xcaI\x01\x00\x85\x11J\r\x0b\x00\x00\x00\r\n0\r\n\r\n",
]

CONFIGS = [
    b'select = ["cors", "status-headers"]\nignore = ["x-prefixed-header"]\n'
    b'rule_dirs = ["lint/http-rules"]\nredact = ["X-Api-Key", "password"]\n\n'
    b'[rules.cookie-without-secure]\nseverity = "error"\n\n'
    b'[rules.missing-date]\nenabled = false\n\n'
    b'[[suppress]]\nrule = "missing-date"\nhost = "*.internal.test"\npath = "/health/**"\n'
    b'reason = "health checks"\n',
    b"http_ports = [8080, 8443]\n",
    b'[[suppress]]\nrule = "all"\npath = "{a,b}/[!x]*"\nreason = "r"\n',
    b'select = ["nope"]\n[rules.nope]\nseverity = "info"\n',
]


def seed_session():
    """Each connection's payloads, in capture order, as records of the session target:
    control byte 0x30 (client = direction 0, FIN both ways), no key-log text, then per
    payload (up to 4095 bytes a record) b0 = direction | (len >> 8) << 4, b1 = len & 0xff."""
    files = sorted(CAPTURES.glob("*.pcap")) + sorted((CAPTURES / "tls").glob("*.pcap"))
    for p in files:
        parsed = pcap_frames(p.read_bytes())
        if not parsed:
            continue
        linktype, frames = parsed
        conns = {}
        for _, seg in tcp_segments(linktype, frames):
            src, dst, _, _, flags, payload = seg
            key = frozenset((src, dst))
            if key not in conns:
                client = dst if flags & 0x12 == 0x12 else src
                conns[key] = (client, bytearray([0x30, 0]))
            client, rec = conns[key]
            d = 0 if src == client else 1
            for i in range(0, len(payload), 4095):
                part = payload[i : i + 4095]
                rec += bytes([d | (len(part) >> 8) << 4, len(part) & 0xFF]) + part
        for _, rec in list(conns.values())[:8]:
            if len(rec) > 2:
                put("session", bytes(rec))


def seed_har():
    for p in sorted((CAPTURES / "har").glob("*.har")):
        put("har", p.read_bytes())


def main():
    seed_captures()
    seed_decode_and_reassembly()
    seed_rules()
    seed_session()
    seed_har()
    for i, body in enumerate(CHUNKED):
        put("http_chunked", bytes([i % 16, 1 + i * 7]) + body)
    for c in CONFIGS:
        put("config_toml", c)
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} files")


if __name__ == "__main__":
    main()
