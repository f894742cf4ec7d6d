//! The RFC 7574 datagram format: a 4-byte destination channel ID followed by messages (§8).
//!
//! Decoding is context dependent: the chunk addressing method, the hash length and the signature length
//! are fixed by the handshake. [`WireCtx`] carries them; a HANDSHAKE decoded inside a datagram updates the
//! context for the messages that follow it in the same datagram.

use crate::bin::Bin;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

/// Message type codes (RFC 7574 §8.1, Table 7).
pub mod msg {
    pub const HANDSHAKE: u8 = 0;
    pub const DATA: u8 = 1;
    pub const ACK: u8 = 2;
    pub const HAVE: u8 = 3;
    pub const INTEGRITY: u8 = 4;
    pub const PEX_RES_V4: u8 = 5;
    pub const PEX_REQ: u8 = 6;
    pub const SIGNED_INTEGRITY: u8 = 7;
    pub const REQUEST: u8 = 8;
    pub const CANCEL: u8 = 9;
    pub const CHOKE: u8 = 10;
    pub const UNCHOKE: u8 = 11;
    pub const PEX_RES_V6: u8 = 12;
    pub const PEX_RES_CERT: u8 = 13;
}

/// Handshake option codes (RFC 7574 §7, Table 1).
pub mod opt {
    pub const VERSION: u8 = 0;
    pub const MIN_VERSION: u8 = 1;
    pub const SWARM_ID: u8 = 2;
    pub const CONTENT_INTEGRITY: u8 = 3;
    pub const MERKLE_HASH: u8 = 4;
    pub const LIVE_SIGNATURE: u8 = 5;
    pub const CHUNK_ADDRESSING: u8 = 6;
    pub const LIVE_DISCARD_WINDOW: u8 = 7;
    pub const SUPPORTED_MESSAGES: u8 = 8;
    pub const CHUNK_SIZE: u8 = 9;
    pub const END: u8 = 255;
}

/// Chunk addressing methods (RFC 7574 §7.5, Table 4).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Addressing {
    Bins32 = 0,
    ByteRanges64 = 1,
    ChunkRanges32 = 2,
    Bins64 = 3,
    ChunkRanges64 = 4,
}

impl Addressing {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Bins32,
            1 => Self::ByteRanges64,
            2 => Self::ChunkRanges32,
            3 => Self::Bins64,
            4 => Self::ChunkRanges64,
            _ => return None,
        })
    }
    /// Width in bytes of the live discard window option value under this method.
    pub fn window_width(self) -> usize {
        match self {
            Self::Bins32 | Self::ChunkRanges32 => 4,
            _ => 8,
        }
    }
}

/// Content integrity protection methods (RFC 7574 §7.3, Table 2).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum IntegrityMethod {
    None = 0,
    MerkleHashTree = 1,
    SignAll = 2,
    UnifiedMerkleTree = 3,
}

impl IntegrityMethod {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::MerkleHashTree,
            2 => Self::SignAll,
            3 => Self::UnifiedMerkleTree,
            _ => return None,
        })
    }
}

/// Merkle hash functions (RFC 7574 §7.4, Table 3).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum HashFunc {
    Sha1 = 0,
    Sha224 = 1,
    Sha256 = 2,
    Sha384 = 3,
    Sha512 = 4,
}

impl HashFunc {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Sha1,
            1 => Self::Sha224,
            2 => Self::Sha256,
            3 => Self::Sha384,
            4 => Self::Sha512,
            _ => return None,
        })
    }
    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha224 => 28,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// Live signature algorithms are DNSSEC algorithm numbers (RFC 7574 §7.6). This crate signs with
/// Ed25519 (DNSSEC number 15, RFC 8080); ECDSA P-256/SHA-256 (13) is recognised on the wire.
pub mod sigalg {
    pub const ECDSA_P256_SHA256: u8 = 13;
    pub const ED25519: u8 = 15;
    /// Signature length for an algorithm, if known.
    pub fn sig_len(alg: u8) -> Option<usize> {
        match alg {
            ECDSA_P256_SHA256 | ED25519 => Some(64),
            _ => None,
        }
    }
}

/// A chunk specification in one of the wire forms.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ChunkSpec {
    Bin32(u32),
    Bin64(u64),
    /// Inclusive chunk range.
    ChunkRange32(u32, u32),
    ChunkRange64(u64, u64),
    /// Inclusive byte range.
    ByteRange64(u64, u64),
}

impl ChunkSpec {
    /// Inclusive chunk range this spec denotes, or `None` for the "all/none" bin 0xFFFFFFFF or a reversed
    /// range. Byte ranges need the chunk size.
    pub fn chunks(self, chunk_size: u32) -> Option<(u64, u64)> {
        let cs = chunk_size.max(1) as u64;
        match self {
            ChunkSpec::Bin32(u32::MAX) | ChunkSpec::Bin64(u64::MAX) => None,
            ChunkSpec::Bin32(b) => {
                let b = Bin(b as u64);
                Some((b.first_chunk(), b.last_chunk()))
            }
            ChunkSpec::Bin64(b) => {
                let b = Bin(b);
                (b.layer() < 63).then(|| (b.first_chunk(), b.last_chunk()))
            }
            ChunkSpec::ChunkRange32(s, e) => (s <= e).then_some((s as u64, e as u64)),
            ChunkSpec::ChunkRange64(s, e) => (s <= e).then_some((s, e)),
            ChunkSpec::ByteRange64(s, e) => (s <= e).then_some((s / cs, e / cs)),
        }
    }

    /// Encodes the inclusive chunk range `[s, e]` under `addressing`; for bin methods the range must be a
    /// single aligned bin (use [`crate::bin::range_to_bins`] first).
    pub fn from_range(addressing: Addressing, s: u64, e: u64, chunk_size: u32) -> ChunkSpec {
        match addressing {
            Addressing::ChunkRanges32 => ChunkSpec::ChunkRange32(s as u32, e as u32),
            Addressing::ChunkRanges64 => ChunkSpec::ChunkRange64(s, e),
            Addressing::ByteRanges64 => {
                let cs = chunk_size as u64;
                ChunkSpec::ByteRange64(s * cs, (e + 1) * cs - 1)
            }
            Addressing::Bins32 | Addressing::Bins64 => {
                let b = crate::bin::range_to_bins(s, e)[0];
                debug_assert!(
                    b.first_chunk() == s && b.last_chunk() == e,
                    "range is not one bin"
                );
                if addressing == Addressing::Bins32 {
                    ChunkSpec::Bin32(b.0 as u32)
                } else {
                    ChunkSpec::Bin64(b.0)
                }
            }
        }
    }

    /// Encodes a bin under `addressing`.
    pub fn from_bin(addressing: Addressing, b: Bin, chunk_size: u32) -> ChunkSpec {
        ChunkSpec::from_range(addressing, b.first_chunk(), b.last_chunk(), chunk_size)
    }

    fn addressing(self) -> Addressing {
        match self {
            ChunkSpec::Bin32(_) => Addressing::Bins32,
            ChunkSpec::Bin64(_) => Addressing::Bins64,
            ChunkSpec::ChunkRange32(..) => Addressing::ChunkRanges32,
            ChunkSpec::ChunkRange64(..) => Addressing::ChunkRanges64,
            ChunkSpec::ByteRange64(..) => Addressing::ByteRanges64,
        }
    }

    fn encode(self, out: &mut Vec<u8>) {
        match self {
            ChunkSpec::Bin32(b) => out.extend_from_slice(&b.to_be_bytes()),
            ChunkSpec::Bin64(b) => out.extend_from_slice(&b.to_be_bytes()),
            ChunkSpec::ChunkRange32(s, e) => {
                out.extend_from_slice(&s.to_be_bytes());
                out.extend_from_slice(&e.to_be_bytes());
            }
            ChunkSpec::ChunkRange64(s, e) | ChunkSpec::ByteRange64(s, e) => {
                out.extend_from_slice(&s.to_be_bytes());
                out.extend_from_slice(&e.to_be_bytes());
            }
        }
    }
}

/// One handshake protocol option.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum HandshakeOption {
    Version(u8),
    MinVersion(u8),
    SwarmId(Vec<u8>),
    ContentIntegrity(IntegrityMethod),
    MerkleHash(HashFunc),
    /// DNSSEC algorithm number.
    LiveSignature(u8),
    ChunkAddressing(Addressing),
    /// In chunks; 0xFFFFFFFF (or all ones at 64 bit) means "unlimited".
    LiveDiscardWindow(u64),
    /// Bitmap of supported message types, MSB of the first byte is message type 0.
    SupportedMessages(Vec<u8>),
    ChunkSize(u32),
}

/// The options of a HANDSHAKE, in wire order; the END option is implicit.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Handshake {
    pub source_channel: u32,
    pub options: Vec<HandshakeOption>,
}

impl Handshake {
    pub fn swarm_id(&self) -> Option<&[u8]> {
        self.options.iter().find_map(|o| match o {
            HandshakeOption::SwarmId(s) => Some(s.as_slice()),
            _ => None,
        })
    }
    pub fn find<T>(&self, f: impl Fn(&HandshakeOption) -> Option<T>) -> Option<T> {
        self.options.iter().find_map(f)
    }
}

/// A decoded message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    Handshake(Handshake),
    /// Chunk spec, 64-bit timestamp (µs), payload (the rest of the datagram).
    Data {
        spec: ChunkSpec,
        timestamp: u64,
        data: Vec<u8>,
    },
    /// Chunk spec, one-way delay sample in µs.
    Ack {
        spec: ChunkSpec,
        delay_sample: u64,
    },
    Have(ChunkSpec),
    Integrity {
        spec: ChunkSpec,
        hash: Vec<u8>,
    },
    PexResV4(SocketAddrV4),
    PexReq,
    SignedIntegrity {
        spec: ChunkSpec,
        timestamp: u64,
        signature: Vec<u8>,
    },
    Request(ChunkSpec),
    Cancel(ChunkSpec),
    Choke,
    Unchoke,
    PexResV6(SocketAddrV6),
    /// A membership certificate, opaque here.
    PexResCert(Vec<u8>),
}

impl Message {
    pub fn type_code(&self) -> u8 {
        match self {
            Message::Handshake(_) => msg::HANDSHAKE,
            Message::Data { .. } => msg::DATA,
            Message::Ack { .. } => msg::ACK,
            Message::Have(_) => msg::HAVE,
            Message::Integrity { .. } => msg::INTEGRITY,
            Message::PexResV4(_) => msg::PEX_RES_V4,
            Message::PexReq => msg::PEX_REQ,
            Message::SignedIntegrity { .. } => msg::SIGNED_INTEGRITY,
            Message::Request(_) => msg::REQUEST,
            Message::Cancel(_) => msg::CANCEL,
            Message::Choke => msg::CHOKE,
            Message::Unchoke => msg::UNCHOKE,
            Message::PexResV6(_) => msg::PEX_RES_V6,
            Message::PexResCert(_) => msg::PEX_RES_CERT,
        }
    }
}

/// Decoding parameters fixed by the handshake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WireCtx {
    pub addressing: Addressing,
    pub hash_len: usize,
    pub sig_len: usize,
}

impl Default for WireCtx {
    /// Before a handshake is seen: 32-bit bins, SHA-1 (20-byte hashes), 64-byte signatures.
    fn default() -> Self {
        WireCtx {
            addressing: Addressing::Bins32,
            hash_len: 20,
            sig_len: 64,
        }
    }
}

/// Why a datagram was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum DecodeError {
    #[error("datagram shorter than the 4-byte channel id")]
    NoChannel,
    #[error("message {msg_type} at offset {offset} is truncated")]
    Truncated { msg_type: u8, offset: usize },
    #[error("unknown message type {0} at offset {1}")]
    UnknownMessage(u8, usize),
    #[error("unknown handshake option {0}")]
    UnknownOption(u8),
    #[error("invalid value {value} for handshake option {option}")]
    BadOptionValue { option: u8, value: u64 },
    #[error("handshake options not terminated by END")]
    UnterminatedHandshake,
}

/// A decoded datagram.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Datagram {
    pub channel: u32,
    pub messages: Vec<Message>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    msg_type: u8,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(DecodeError::Truncated {
                msg_type: self.msg_type,
                offset: self.pos,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn spec(&mut self, a: Addressing) -> Result<ChunkSpec, DecodeError> {
        Ok(match a {
            Addressing::Bins32 => ChunkSpec::Bin32(self.u32()?),
            Addressing::Bins64 => ChunkSpec::Bin64(self.u64()?),
            Addressing::ChunkRanges32 => ChunkSpec::ChunkRange32(self.u32()?, self.u32()?),
            Addressing::ChunkRanges64 => ChunkSpec::ChunkRange64(self.u64()?, self.u64()?),
            Addressing::ByteRanges64 => ChunkSpec::ByteRange64(self.u64()?, self.u64()?),
        })
    }
}

fn decode_handshake(r: &mut Reader<'_>, ctx: &mut WireCtx) -> Result<Handshake, DecodeError> {
    let source_channel = r.u32()?;
    let mut options = Vec::new();
    // The live discard window's width follows the addressing method named earlier in the same handshake
    // (the RFC default, 32-bit bins, when none is): a handshake is decoded on its own terms.
    let mut hs_addressing = Addressing::Bins32;
    loop {
        let code = r.u8()?;
        let bad = |value: u64| DecodeError::BadOptionValue {
            option: code,
            value,
        };
        let o = match code {
            opt::END => break,
            opt::VERSION => HandshakeOption::Version(r.u8()?),
            opt::MIN_VERSION => HandshakeOption::MinVersion(r.u8()?),
            opt::SWARM_ID => {
                let n = r.u16()? as usize;
                HandshakeOption::SwarmId(r.take(n)?.to_vec())
            }
            opt::CONTENT_INTEGRITY => {
                let v = r.u8()?;
                HandshakeOption::ContentIntegrity(IntegrityMethod::from_u8(v).ok_or(bad(v as u64))?)
            }
            opt::MERKLE_HASH => {
                let v = r.u8()?;
                let h = HashFunc::from_u8(v).ok_or(bad(v as u64))?;
                ctx.hash_len = h.digest_len();
                HandshakeOption::MerkleHash(h)
            }
            opt::LIVE_SIGNATURE => {
                let v = r.u8()?;
                if let Some(l) = sigalg::sig_len(v) {
                    ctx.sig_len = l;
                }
                HandshakeOption::LiveSignature(v)
            }
            opt::CHUNK_ADDRESSING => {
                let v = r.u8()?;
                let a = Addressing::from_u8(v).ok_or(bad(v as u64))?;
                ctx.addressing = a;
                hs_addressing = a;
                HandshakeOption::ChunkAddressing(a)
            }
            opt::LIVE_DISCARD_WINDOW => {
                let v = if hs_addressing.window_width() == 4 {
                    r.u32()? as u64
                } else {
                    r.u64()?
                };
                HandshakeOption::LiveDiscardWindow(v)
            }
            opt::SUPPORTED_MESSAGES => {
                let n = r.u8()? as usize;
                HandshakeOption::SupportedMessages(r.take(n)?.to_vec())
            }
            opt::CHUNK_SIZE => HandshakeOption::ChunkSize(r.u32()?),
            other => return Err(DecodeError::UnknownOption(other)),
        };
        options.push(o);
    }
    Ok(Handshake {
        source_channel,
        options,
    })
}

/// Decodes one datagram. `ctx` is updated by any HANDSHAKE in it; the caller should pass the channel's
/// negotiated context (or the default for channel 0).
pub fn decode(buf: &[u8], ctx: &mut WireCtx) -> Result<Datagram, DecodeError> {
    if buf.len() < 4 {
        return Err(DecodeError::NoChannel);
    }
    let channel = u32::from_be_bytes(buf[..4].try_into().unwrap());
    let mut r = Reader {
        buf,
        pos: 4,
        msg_type: 0,
    };
    let mut messages = Vec::new();
    while r.pos < buf.len() {
        let at = r.pos;
        let t = r.u8()?;
        r.msg_type = t;
        let m = match t {
            msg::HANDSHAKE => Message::Handshake(decode_handshake(&mut r, ctx)?),
            msg::DATA => {
                let spec = r.spec(ctx.addressing)?;
                let timestamp = r.u64()?;
                let data = buf[r.pos..].to_vec();
                r.pos = buf.len();
                Message::Data {
                    spec,
                    timestamp,
                    data,
                }
            }
            msg::ACK => Message::Ack {
                spec: r.spec(ctx.addressing)?,
                delay_sample: r.u64()?,
            },
            msg::HAVE => Message::Have(r.spec(ctx.addressing)?),
            msg::INTEGRITY => {
                let spec = r.spec(ctx.addressing)?;
                Message::Integrity {
                    spec,
                    hash: r.take(ctx.hash_len)?.to_vec(),
                }
            }
            msg::PEX_RES_V4 => {
                let ip: [u8; 4] = r.take(4)?.try_into().unwrap();
                Message::PexResV4(SocketAddrV4::new(Ipv4Addr::from(ip), r.u16()?))
            }
            msg::PEX_REQ => Message::PexReq,
            msg::SIGNED_INTEGRITY => {
                let spec = r.spec(ctx.addressing)?;
                let timestamp = r.u64()?;
                Message::SignedIntegrity {
                    spec,
                    timestamp,
                    signature: r.take(ctx.sig_len)?.to_vec(),
                }
            }
            msg::REQUEST => Message::Request(r.spec(ctx.addressing)?),
            msg::CANCEL => Message::Cancel(r.spec(ctx.addressing)?),
            msg::CHOKE => Message::Choke,
            msg::UNCHOKE => Message::Unchoke,
            msg::PEX_RES_V6 => {
                let ip: [u8; 16] = r.take(16)?.try_into().unwrap();
                Message::PexResV6(SocketAddrV6::new(Ipv6Addr::from(ip), r.u16()?, 0, 0))
            }
            msg::PEX_RES_CERT => {
                let n = r.u16()? as usize;
                Message::PexResCert(r.take(n)?.to_vec())
            }
            other => return Err(DecodeError::UnknownMessage(other, at)),
        };
        messages.push(m);
    }
    Ok(Datagram { channel, messages })
}

/// Appends the encoding of one message. Chunk specs are written in the form they carry; a HANDSHAKE gets its
/// END option appended.
pub fn encode_message(m: &Message, out: &mut Vec<u8>) {
    out.push(m.type_code());
    match m {
        Message::Handshake(h) => {
            out.extend_from_slice(&h.source_channel.to_be_bytes());
            let mut addressing = Addressing::Bins32;
            for o in &h.options {
                match o {
                    HandshakeOption::Version(v) => out.extend_from_slice(&[opt::VERSION, *v]),
                    HandshakeOption::MinVersion(v) => {
                        out.extend_from_slice(&[opt::MIN_VERSION, *v])
                    }
                    HandshakeOption::SwarmId(s) => {
                        out.push(opt::SWARM_ID);
                        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
                        out.extend_from_slice(s);
                    }
                    HandshakeOption::ContentIntegrity(c) => {
                        out.extend_from_slice(&[opt::CONTENT_INTEGRITY, *c as u8])
                    }
                    HandshakeOption::MerkleHash(h) => {
                        out.extend_from_slice(&[opt::MERKLE_HASH, *h as u8])
                    }
                    HandshakeOption::LiveSignature(a) => {
                        out.extend_from_slice(&[opt::LIVE_SIGNATURE, *a])
                    }
                    HandshakeOption::ChunkAddressing(a) => {
                        addressing = *a;
                        out.extend_from_slice(&[opt::CHUNK_ADDRESSING, *a as u8]);
                    }
                    HandshakeOption::LiveDiscardWindow(w) => {
                        out.push(opt::LIVE_DISCARD_WINDOW);
                        if addressing.window_width() == 4 {
                            out.extend_from_slice(&(*w as u32).to_be_bytes());
                        } else {
                            out.extend_from_slice(&w.to_be_bytes());
                        }
                    }
                    HandshakeOption::SupportedMessages(b) => {
                        out.push(opt::SUPPORTED_MESSAGES);
                        out.push(b.len() as u8);
                        out.extend_from_slice(b);
                    }
                    HandshakeOption::ChunkSize(c) => {
                        out.push(opt::CHUNK_SIZE);
                        out.extend_from_slice(&c.to_be_bytes());
                    }
                }
            }
            out.push(opt::END);
        }
        Message::Data {
            spec,
            timestamp,
            data,
        } => {
            spec.encode(out);
            out.extend_from_slice(&timestamp.to_be_bytes());
            out.extend_from_slice(data);
        }
        Message::Ack { spec, delay_sample } => {
            spec.encode(out);
            out.extend_from_slice(&delay_sample.to_be_bytes());
        }
        Message::Have(s) | Message::Request(s) | Message::Cancel(s) => s.encode(out),
        Message::Integrity { spec, hash } => {
            spec.encode(out);
            out.extend_from_slice(hash);
        }
        Message::PexResV4(a) => {
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        Message::PexResV6(a) => {
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        Message::PexReq | Message::Choke | Message::Unchoke => {}
        Message::SignedIntegrity {
            spec,
            timestamp,
            signature,
        } => {
            spec.encode(out);
            out.extend_from_slice(&timestamp.to_be_bytes());
            out.extend_from_slice(signature);
        }
        Message::PexResCert(c) => {
            out.extend_from_slice(&(c.len() as u16).to_be_bytes());
            out.extend_from_slice(c);
        }
    }
}

/// Encodes a whole datagram.
pub fn encode(d: &Datagram) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&d.channel.to_be_bytes());
    for m in &d.messages {
        encode_message(m, &mut out);
    }
    out
}

/// The supported-messages bitmap for a set of message type codes (MSB first).
pub fn supported_bitmap(types: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 2];
    for &t in types {
        b[(t / 8) as usize] |= 0x80 >> (t % 8);
    }
    b
}

/// Whether a chunk spec uses the addressing of `ctx` (messages must be in the negotiated form).
pub fn spec_matches(spec: &ChunkSpec, a: Addressing) -> bool {
    spec.addressing() == a
}
