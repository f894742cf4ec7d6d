#!/usr/bin/env python3
"""Writes wire.txt: golden PPSPP (RFC 7574 section 8) datagrams, built field by field from the RFC's layouts
(independently of the Rust encoder), with the decode the library must produce (its Debug form) or the error.

Line format:  name | context | hex | expected
context = addressing/hash_len/sig_len before the datagram (a HANDSHAKE inside may change it).
"""
import struct

def u8(v): return struct.pack(">B", v)
def u16(v): return struct.pack(">H", v)
def u32(v): return struct.pack(">I", v)
def u64(v): return struct.pack(">Q", v)
def lst(b): return "[" + ", ".join(str(x) for x in b) + "]"

CH = u32(0xCAFEBABE)
TS = 0x0000000102030405
out = []
def v(name, ctx, raw, expected, chan=0xCAFEBABE):
    out.append(f"{name} | {ctx} | {raw.hex()} | {expected}")
def dg(msgs, expected_msgs, chan=0xCAFEBABE):
    return u32(chan) + msgs, f"Datagram {{ channel: {chan}, messages: [{expected_msgs}] }}"

swarm = bytes(range(20))
hs = (u8(0) + u32(0x12345678) + u8(0) + u8(1) + u8(1) + u8(1) + u8(2) + u16(20) + swarm + u8(3) + u8(1) + u8(4) + u8(0)
      + u8(5) + u8(15) + u8(6) + u8(0) + u8(7) + u32(4096) + u8(8) + u8(2) + b"\xff\xfc" + u8(9) + u32(1024) + u8(255))
raw, e = dg(hs, "Handshake(Handshake { source_channel: 305419896, options: [Version(1), MinVersion(1), "
            f"SwarmId({lst(swarm)}), ContentIntegrity(MerkleHashTree), MerkleHash(Sha1), LiveSignature(15), "
            "ChunkAddressing(Bins32), LiveDiscardWindow(4096), SupportedMessages([255, 252]), ChunkSize(1024)] })", chan=0)
v("handshake_all_options_bin32", "bins32/20/64", raw, e)

hs64 = (u8(0) + u32(1) + u8(3) + u8(3) + u8(4) + u8(2) + u8(5) + u8(13) + u8(6) + u8(4) + u8(7) + u64(0xFFFFFFFFFFFFFFFF) + u8(255))
raw, e = dg(hs64, "Handshake(Handshake { source_channel: 1, options: [ContentIntegrity(UnifiedMerkleTree), "
            "MerkleHash(Sha256), LiveSignature(13), ChunkAddressing(ChunkRanges64), LiveDiscardWindow(18446744073709551615)] })", chan=0)
v("handshake_live_64bit_window", "bins32/20/64", raw, e)

for code, name in [(1, "ByteRanges64"), (3, "Bins64"), (2, "ChunkRanges32")]:
    raw, e = dg(u8(0) + u32(7) + u8(6) + u8(code) + u8(255),
                f"Handshake(Handshake {{ source_channel: 7, options: [ChunkAddressing({name})] }})")
    v(f"handshake_addressing_{name}", "bins32/20/64", raw, e)
for code, name in [(1, "Sha224"), (3, "Sha384"), (4, "Sha512")]:
    raw, e = dg(u8(0) + u32(7) + u8(4) + u8(code) + u8(255),
                f"Handshake(Handshake {{ source_channel: 7, options: [MerkleHash({name})] }})")
    v(f"handshake_hash_{name}", "bins32/20/64", raw, e)
for code, name in [(0, "None"), (2, "SignAll")]:
    raw, e = dg(u8(0) + u32(7) + u8(3) + u8(code) + u8(255),
                f"Handshake(Handshake {{ source_channel: 7, options: [ContentIntegrity({name})] }})")
    v(f"handshake_integrity_{name}", "bins32/20/64", raw, e)

raw, e = dg(u8(0) + u32(0) + u8(255), "Handshake(Handshake { source_channel: 0, options: [] })")
v("handshake_close", "bins32/20/64", raw, e)

raw, e = dg(u8(1) + u32(2) + u64(TS) + b"hello", f"Data {{ spec: Bin32(2), timestamp: {TS}, data: {lst(b'hello')} }}")
v("data_bin32", "bins32/20/64", raw, e)
raw, e = dg(u8(1) + u32(4) + u32(5) + u64(TS) + b"\x00\x01", f"Data {{ spec: ChunkRange32(4, 5), timestamp: {TS}, data: [0, 1] }}")
v("data_range32", "chunkranges32/20/64", raw, e)
raw, e = dg(u8(1) + u64(6) + u64(7) + u64(TS), f"Data {{ spec: ChunkRange64(6, 7), timestamp: {TS}, data: [] }}")
v("data_range64_empty", "chunkranges64/20/64", raw, e)

raw, e = dg(u8(2) + u32(3) + u64(1500), "Ack { spec: Bin32(3), delay_sample: 1500 }")
v("ack_bin32", "bins32/20/64", raw, e)
raw, e = dg(u8(2) + u32(0) + u32(9) + u64(25000), "Ack { spec: ChunkRange32(0, 9), delay_sample: 25000 }")
v("ack_range32", "chunkranges32/20/64", raw, e)

raw, e = dg(u8(3) + u32(7), "Have(Bin32(7))"); v("have_bin32", "bins32/20/64", raw, e)
raw, e = dg(u8(3) + u32(0xFFFFFFFF), "Have(Bin32(4294967295))"); v("have_bin32_all", "bins32/20/64", raw, e)
raw, e = dg(u8(3) + u64(15), "Have(Bin64(15))"); v("have_bin64", "bins64/20/64", raw, e)
raw, e = dg(u8(3) + u32(10) + u32(20), "Have(ChunkRange32(10, 20))"); v("have_range32", "chunkranges32/20/64", raw, e)
raw, e = dg(u8(3) + u64(1 << 33) + u64((1 << 33) + 5), f"Have(ChunkRange64({1 << 33}, {(1 << 33) + 5}))")
v("have_range64", "chunkranges64/20/64", raw, e)
raw, e = dg(u8(3) + u64(0) + u64(4095), "Have(ByteRange64(0, 4095))"); v("have_byterange64", "byteranges64/20/64", raw, e)

h1 = bytes(range(100, 120))
raw, e = dg(u8(4) + u32(1) + h1, f"Integrity {{ spec: Bin32(1), hash: {lst(h1)} }}")
v("integrity_sha1_bin32", "bins32/20/64", raw, e)
h2 = bytes(range(32))
raw, e = dg(u8(4) + u32(0) + u32(3) + h2, f"Integrity {{ spec: ChunkRange32(0, 3), hash: {lst(h2)} }}")
v("integrity_sha256_range32", "chunkranges32/32/64", raw, e)

raw, e = dg(u8(5) + bytes([192, 0, 2, 1]) + u16(6778), "PexResV4(192.0.2.1:6778)"); v("pex_res_v4", "bins32/20/64", raw, e)
raw, e = dg(u8(6), "PexReq"); v("pex_req", "bins32/20/64", raw, e)
sig = bytes((i * 7) & 0xFF for i in range(64))
raw, e = dg(u8(7) + u32(0) + u32(15) + u64(TS) + sig, f"SignedIntegrity {{ spec: ChunkRange32(0, 15), timestamp: {TS}, signature: {lst(sig)} }}")
v("signed_integrity_range32", "chunkranges32/20/64", raw, e)
raw, e = dg(u8(8) + u32(100) + u32(163), "Request(ChunkRange32(100, 163))"); v("request_range32", "chunkranges32/20/64", raw, e)
raw, e = dg(u8(8) + u32(31), "Request(Bin32(31))"); v("request_bin32", "bins32/20/64", raw, e)
raw, e = dg(u8(9) + u32(12), "Cancel(Bin32(12))"); v("cancel_bin32", "bins32/20/64", raw, e)
raw, e = dg(u8(10), "Choke"); v("choke", "bins32/20/64", raw, e)
raw, e = dg(u8(11), "Unchoke"); v("unchoke", "bins32/20/64", raw, e)
ip6 = bytes.fromhex("20010db8000000000000000000000001")
raw, e = dg(u8(12) + ip6 + u16(6778), "PexResV6([2001:db8::1]:6778)"); v("pex_res_v6", "bins32/20/64", raw, e)
raw, e = dg(u8(13) + u16(3) + b"abc", "PexResCert([97, 98, 99])"); v("pex_res_cert", "bins32/20/64", raw, e)
raw, e = dg(b"", ""); v("keepalive", "bins32/20/64", raw, e)

# A handshake switches the context for the messages after it in the same datagram.
raw, e = dg(u8(0) + u32(9) + u8(6) + u8(2) + u8(255) + u8(3) + u32(0) + u32(99) + u8(11),
            "Handshake(Handshake { source_channel: 9, options: [ChunkAddressing(ChunkRanges32)] }), Have(ChunkRange32(0, 99)), Unchoke", chan=0)
v("handshake_then_have_context_switch", "bins32/20/64", raw, e)

# Errors: decoded to these errors (Display), never a panic.
out.append(f"err_short | bins32/20/64 | 000000 | ERR datagram shorter than the 4-byte channel id")
out.append(f"err_unknown_type | bins32/20/64 | {(CH + u8(14)).hex()} | ERR unknown message type 14 at offset 4")
out.append(f"err_truncated_have | bins32/20/64 | {(CH + u8(3) + bytes([0, 1])).hex()} | ERR message 3 at offset 5 is truncated")
out.append(f"err_handshake_no_end | bins32/20/64 | {(u32(0) + u8(0) + u32(5) + u8(0) + u8(1)).hex()} | ERR message 0 at offset 11 is truncated")
out.append(f"err_unknown_option | bins32/20/64 | {(u32(0) + u8(0) + u32(5) + u8(42)).hex()} | ERR unknown handshake option 42")
out.append(f"err_bad_addressing | bins32/20/64 | {(u32(0) + u8(0) + u32(5) + u8(6) + u8(9) + u8(255)).hex()} | ERR invalid value 9 for handshake option 6")
out.append(f"err_truncated_integrity | chunkranges32/32/64 | {(CH + u8(4) + u32(0) + u32(0) + bytes(31)).hex()} | ERR message 4 at offset 13 is truncated")

open("wire.txt", "w").write("# generated by gen_vectors.py: name | context | hex | expected decode (Debug) or ERR message\n" + "\n".join(out) + "\n")
print(len(out), "vectors")
