//! The daemon under test and a minimal HTTP client, shared by the daemon's end-to-end tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.1 client (one request per connection), so the test depends on no HTTP library.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    try_http(port, method, path, body).unwrap()
}

/// The same, with connection failures and cut-off answers as errors.
pub fn try_http(
    port: u16,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let cut = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no complete HTTP head");
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(cut)?;
    let head = String::from_utf8_lossy(&resp[..head_end]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(cut)?;
    let mut body = resp[head_end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((status, body))
}

pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
}

pub fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

pub struct Daemon {
    pub child: Child,
    pub notify: UnixDatagram,
    pub port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    pub fn start(dir: &Path, max_sessions: u32) -> Daemon {
        Self::start_with_env(dir, max_sessions, &[])
    }

    pub fn start_with_env(dir: &Path, max_sessions: u32, env: &[(&str, &str)]) -> Daemon {
        Self::start_with(dir, max_sessions, "", env)
    }

    /// `extra_media`: more lines for the `[media]` table.
    pub fn start_with(
        dir: &Path,
        max_sessions: u32,
        extra_media: &str,
        env: &[(&str, &str)],
    ) -> Daemon {
        Self::start_on(free_port(), dir, max_sessions, extra_media, env)
    }

    /// The same, listening on `port` (a restart on the port clients know).
    pub fn start_on(
        port: u16,
        dir: &Path,
        max_sessions: u32,
        extra_media: &str,
        env: &[(&str, &str)],
    ) -> Daemon {
        let cfg = dir.join("config.toml");
        std::fs::write(
            &cfg,
            format!(
                "[agent]\ndata_dir = \"{}\"\n[media]\nladder = [\"P360p30fps16x9\", \"P240p30fps16x9\"]\nmax_sessions = {max_sessions}\n{extra_media}\n[ingest]\nlisten = \"127.0.0.1:{port}\"\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let sock = dir.join("notify.sock");
        let _ = std::fs::remove_file(&sock);
        let notify = UnixDatagram::bind(&sock).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
            .args(["run", "--config"])
            .arg(&cfg)
            .env("NOTIFY_SOCKET", &sock)
            .env("WATCHDOG_USEC", "400000")
            .env_remove("WATCHDOG_PID")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Daemon {
            child,
            notify,
            port,
        }
    }

    pub fn next_notify(&self) -> String {
        self.try_notify().expect("notify message")
    }

    pub fn try_notify(&self) -> Option<String> {
        let mut buf = [0u8; 512];
        let n = self.notify.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).to_string())
    }
}

pub fn test_segments(n: usize) -> Vec<Vec<u8>> {
    let src = media::sources::TestSource {
        width: 640,
        height: 360,
        fps: 30,
        duration: n as f64,
        audio: true,
        segment_secs: 1.0,
        bitrate_kbps: 2000,
        ..Default::default()
    };
    src.segments().expect("test source")
}

/// Three TS packets of PID 0 (PAT) with the section start flag set, each filled by its adaptation field
/// (adaptation_field_control 0b11, adaptation_field_length 183): no room for the payload they announce.
pub fn pat_without_payload_segment() -> Vec<u8> {
    let seg: Vec<u8> = (0..3u8)
        .flat_map(|cc| {
            let mut pkt = vec![0x47, 0x40, 0x00, 0x30 | cc, 183, 0x00];
            pkt.resize(188, 0xff);
            pkt
        })
        .collect();
    assert_eq!(seg.len(), 564);
    seg
}

/// `good` with intact TS, PES and NAL framing and intact SPS/PPS, but garbage in every slice: it passes the
/// demuxer and fails in the decoder.
pub fn undecodable_segment(good: &[u8]) -> Vec<u8> {
    use media::ts;
    let d = ts::demux(good).unwrap();
    let aus: Vec<Vec<u8>> = d
        .video
        .iter()
        .map(|au| {
            let mut out = Vec::new();
            for nal in ts::nal_units(&au.data) {
                out.extend_from_slice(&[0, 0, 0, 1]);
                if matches!(nal[0] & 0x1f, 7 | 8) {
                    out.extend_from_slice(nal);
                } else {
                    out.push(nal[0]);
                    out.extend((0..nal.len().min(300)).map(|k| (k * 73 % 253) as u8 | 1));
                }
            }
            out
        })
        .collect();
    let frames: Vec<ts::EncodedFrame> = d
        .video
        .iter()
        .zip(&aus)
        .map(|(au, data)| ts::EncodedFrame {
            pts: au.pts,
            dts: au.dts,
            key: au.key,
            data,
        })
        .collect();
    let audio_type = d
        .audio_stream_type
        .map(|t| (t, d.audio_descriptors.as_slice()));
    ts::TsMuxer::new().mux_segment(&frames, &d.audio, audio_type)
}

/// xorshift64*: enough randomness for fault tests, reproducible from the seed they print.
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from `var` when it is set (to replay a run), else from the clock.
    pub fn from_env(var: &str) -> (Self, u64) {
        let seed = match env_or(var, 0u64) {
            0 => {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            }
            s => s,
        };
        (Rng(seed), seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A number from the environment variable `var`, or `default`.
pub fn env_or<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
