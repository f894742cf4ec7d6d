//! `edge-fleet`: the operator's CLI for a fleet of edge transcoder boxes, plus the PKI and broker-config
//! helpers and a standalone device agent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use fleet::console::rollout::{Rollout, RolloutSpec, TargetState};
use fleet::operator::{DeviceView, FleetEvent, Operator, Selector, merge_config};
use fleet::pki::{self, Role};
use fleet::proto::{CommandRequest, DesiredDoc, RuntimeConfig, UpdateRequest};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, Parser)]
#[command(
    name = "edge-fleet",
    version,
    about = "Fleet management for edge transcoder boxes (MQTT v5)"
)]
struct Cli {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Log filter for this tool's own logs (stderr).
    #[arg(long, global = true, env = "EDGE_FLEET_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    cmd: Top,
}

#[derive(Debug, Args)]
struct Conn {
    /// Broker as HOST:PORT.
    #[arg(long, env = "EDGE_FLEET_BROKER", default_value = "127.0.0.1:8883")]
    broker: String,
    /// PKI directory holding ca.pem, operator.pem and operator.key (overridden by --ca/--cert/--key).
    #[arg(long, env = "EDGE_FLEET_PKI")]
    pki: Option<PathBuf>,
    #[arg(long)]
    ca: Option<PathBuf>,
    #[arg(long)]
    cert: Option<PathBuf>,
    #[arg(long)]
    key: Option<PathBuf>,
    /// How long to wait for the broker and for retained state to settle.
    #[arg(long, default_value = "5")]
    connect_timeout: u64,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// Create the fleet CA and issue certificates.
    #[command(subcommand)]
    Pki(PkiCmd),
    /// Write a mosquitto config (and ACL) for the fleet broker from the template in the repo.
    BrokerConfig {
        #[arg(long)]
        pki: PathBuf,
        #[arg(long)]
        state: PathBuf,
        #[arg(long, default_value = "8883")]
        port: u16,
        #[arg(long, default_value = "0.0.0.0")]
        bind: String,
        /// User mosquitto drops to when started as root.
        #[arg(long, default_value = "mosquitto")]
        user: String,
        /// Directory that receives mosquitto.conf and acl.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write one box's provisioning bundle (`OUT/provision/`: fleet identity, broker, labels, optional
    /// keystore) to copy onto the EFI system partition of a flashed image; the box takes it at first boot.
    Provision {
        /// The fleet PKI directory (`pki init`), holding the device's certificate.
        #[arg(long)]
        pki: PathBuf,
        /// Device id (the certificate's CN).
        #[arg(long)]
        device: String,
        /// Broker address as the box reaches it, HOST or HOST:PORT (HOST one of the broker certificate's
        /// SANs).
        #[arg(long)]
        broker: String,
        /// A label `KEY=VALUE` reported in telemetry and usable in selectors (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// The agent's ingest and HLS address on the box.
        #[arg(long, default_value = "0.0.0.0:8935")]
        ingest_listen: String,
        /// The box's encrypted chain keystore, copied as provision/keystore.json.
        #[arg(long)]
        keystore: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the device side standalone (no transcoding daemon) with a TOML file holding a [fleet] table.
    Device {
        #[arg(long)]
        config: PathBuf,
        /// Sessions this box could run: a desired session_limit above it is refused.
        #[arg(long)]
        max_sessions: Option<u32>,
    },
    /// Operator console: keeps the fleet's state and serves a JSON API, fleet-wide Prometheus metrics
    /// and staged rollouts over HTTP (Basic auth against --passwords).
    Serve {
        #[command(flatten)]
        conn: Conn,
        /// Address to serve on (port 0: any free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Operator password file (see `edge-fleet passwd`).
        #[arg(long, env = "EDGE_FLEET_PASSWORDS")]
        passwords: PathBuf,
        /// Directory where rollouts are kept across restarts.
        #[arg(long)]
        state_dir: PathBuf,
        /// Telemetry samples kept per box.
        #[arg(long, default_value = "360")]
        history: usize,
    },
    /// Add (or replace) an operator of `edge-fleet serve`; the password is read from stdin.
    Passwd {
        #[arg(long)]
        file: PathBuf,
        user: String,
    },
    /// Staged rollouts of a desired config or an image, through a running `edge-fleet serve`.
    Rollout {
        #[command(flatten)]
        api: Api,
        #[command(subcommand)]
        cmd: RolloutCmd,
    },
    /// All devices: online/offline, last seen, encoder, version, load.
    List {
        #[command(flatten)]
        conn: Conn,
        /// Only devices matching a selector such as encoder=nvenc,board=jetson-orin.
        #[arg(long)]
        select: Option<String>,
    },
    /// Everything known about one device.
    Show {
        #[command(flatten)]
        conn: Conn,
        device: String,
    },
    /// Desired configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Run a command on a device and wait for its result.
    Cmd {
        #[command(flatten)]
        conn: Conn,
        device: String,
        /// ping, restart_pipeline, set_log_level, collect_diagnostics, reboot, update.
        name: String,
        /// Arguments: a JSON object, or key=value pairs.
        args: Vec<String>,
        /// Idempotency key (default: random).  Reusing an id returns the first result.
        #[arg(long)]
        id: Option<String>,
        /// Seconds to wait for the result.
        #[arg(long, default_value = "30")]
        timeout: u64,
        /// Seconds after which an undelivered command is dropped by the broker.
        #[arg(long, default_value = "300")]
        expiry: u64,
    },
    /// Live view of presence, telemetry and config reports.
    Watch {
        #[command(flatten)]
        conn: Conn,
        /// Stop after this many seconds (default: run until interrupted).
        #[arg(long)]
        duration: Option<u64>,
    },
}

#[derive(Debug, Args)]
struct Api {
    /// Base URL of `edge-fleet serve`.
    #[arg(long, env = "EDGE_FLEET_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, env = "EDGE_FLEET_USER")]
    user: String,
    /// The password (better: the EDGE_FLEET_PASSWORD environment variable).
    #[arg(long, env = "EDGE_FLEET_PASSWORD", hide_env_values = true)]
    password: String,
}

#[derive(Debug, Subcommand)]
enum RolloutCmd {
    /// Start a staged rollout of one desired config, or of one image (the `update` command), to every box
    /// matching --select.
    Start {
        /// Selector: board=…, encoder=…, label.NAME=…, id=… (comma-separated, all must match).
        #[arg(long)]
        select: String,
        /// The config as a JSON file.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Fields on top of --file: session_limit=4 ladder='["720p"]'.
        #[arg(long = "set")]
        sets: Vec<String>,
        /// An image instead of a config: url=… sha256=… version=… of the signed bundle, or swarm=ROOT
        /// peers=IP:PORT,… sha256=… version=… to fetch it from the site's swarm (as the `update` command
        /// takes them). A box has it once it runs that version past its health gate; give
        /// --report-timeout the minutes a download, install and reboot take.
        #[arg(long, num_args = 3..=4, value_name = "KEY=VALUE", conflicts_with_all = ["file", "sets"])]
        image: Vec<String>,
        /// For an image rollout: the bundle rollback installs (the version the boxes run now), same form.
        #[arg(long, num_args = 3..=4, value_name = "KEY=VALUE", requires = "image")]
        rollback_image: Vec<String>,
        /// Boxes in the canary wave.
        #[arg(long, default_value = "1")]
        canary: usize,
        /// Cumulative percentages of the following waves (then all the rest).
        #[arg(long, value_delimiter = ',', default_value = "25,50")]
        waves: Vec<u8>,
        /// Seconds each wave must stay healthy after applying.
        #[arg(long, default_value = "60")]
        soak: u64,
        /// Seconds a box may take to report the new version.
        #[arg(long, default_value = "120")]
        report_timeout: u64,
        /// Halt when more than this share (0..1) of a wave fails.
        #[arg(long, default_value = "0")]
        max_failures: f64,
        /// Roll back by itself when it halts.
        #[arg(long)]
        auto_rollback: bool,
    },
    /// One rollout with every box's state, or all rollouts.
    Status {
        id: Option<String>,
    },
    Pause {
        id: String,
    },
    /// Continue a paused rollout, or a halted one (accepting its wave's failures).
    Resume {
        id: String,
    },
    Abort {
        id: String,
    },
    /// Re-publish the previous desired config to every box the rollout reached (an image rollout installs
    /// its rollback image).
    Rollback {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum PkiCmd {
    /// New CA in DIR, plus the broker and operator certificates and any --device certificates.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// Broker DNS names or IPs, comma-separated (the certificate's SANs; boxes and operators must reach
        /// the broker by one of them), e.g. `broker.site.example,10.0.0.5`.
        #[arg(long, default_value = "127.0.0.1")]
        broker_host: String,
        #[arg(long = "device")]
        devices: Vec<String>,
    },
    /// Issue more certificates from the CA in DIR.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long = "device")]
        devices: Vec<String>,
        #[arg(long)]
        operator: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCmd {
    /// Roll out a desired config to one device or to every device matching --select.
    Set {
        #[command(flatten)]
        conn: Conn,
        /// Target device (or use --select).
        device: Option<String>,
        #[arg(long, conflicts_with = "device")]
        select: Option<String>,
        /// Full config as JSON file (replaces the current desired config).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Field overrides on top of the current desired config: log_level=debug session_limit=4
        /// ladder='["720p","360p"]' (value `null` removes a field).
        #[arg(long = "set")]
        sets: Vec<String>,
        /// Explicit version (default: one above what the device has seen).
        #[arg(long)]
        version: Option<u64>,
        /// Seconds to wait for each device's report (0: do not wait).
        #[arg(long, default_value = "15")]
        wait: u64,
    },
    /// Desired and reported config of one device.
    Get {
        #[command(flatten)]
        conn: Conn,
        device: String,
    },
}

impl Conn {
    async fn connect(&self) -> anyhow::Result<Operator> {
        let (host, port) = self
            .broker
            .rsplit_once(':')
            .with_context(|| format!("--broker `{}` is not HOST:PORT", self.broker))?;
        let port: u16 = port
            .parse()
            .with_context(|| format!("bad port in `{}`", self.broker))?;
        let pick = |explicit: &Option<PathBuf>, name: &str| -> anyhow::Result<PathBuf> {
            match (explicit, &self.pki) {
                (Some(p), _) => Ok(p.clone()),
                (None, Some(d)) => Ok(d.join(name)),
                (None, None) => bail!("give --pki DIR (or --ca/--cert/--key, or EDGE_FLEET_PKI)"),
            }
        };
        let ca = pick(&self.ca, "ca.pem")?;
        let cert = pick(&self.cert, "operator.pem")?;
        let key = pick(&self.key, "operator.key")?;
        Operator::connect(
            host,
            port,
            &ca,
            &cert,
            &key,
            Duration::from_secs(self.connect_timeout),
        )
        .await
        .context("connecting to the fleet broker")
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log).context("--log")?;
    let (layer, handle) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(layer)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .try_init()
        .context("log subscriber")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let code = rt.block_on(run(cli, handle))?;
    std::process::exit(code)
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn ago(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(t) => {
            let d = fleet::proto::now_ms().saturating_sub(t) / 1000;
            if d < 120 {
                format!("{d}s ago")
            } else if d < 7200 {
                format!("{}m ago", d / 60)
            } else {
                format!("{}h ago", d / 3600)
            }
        }
    }
}

fn list_row(d: &DeviceView) -> serde_json::Value {
    let t = d.telemetry.as_ref();
    serde_json::json!({
        "device": d.id,
        "online": d.online(),
        "last_seen_ms": d.last_seen_ms(),
        "encoder": d.encoder(),
        "version": d.version(),
        "board": t.and_then(|t| t.daemon.board.clone()),
        "cpu_percent": t.and_then(|t| t.system.cpu_percent),
        "load1": t.and_then(|t| t.system.load1),
        "streams": t.and_then(|t| t.daemon.streams),
        "config_version": d.reported.as_ref().map(|r| r.applied_version),
    })
}

async fn run(
    cli: Cli,
    log: tracing_subscriber::reload::Handle<
        tracing_subscriber::EnvFilter,
        tracing_subscriber::Registry,
    >,
) -> anyhow::Result<i32> {
    let json = cli.json;
    match cli.cmd {
        Top::Pki(PkiCmd::Init {
            dir,
            broker_host,
            devices,
        }) => {
            pki::create_ca(&dir, "edge fleet CA")?;
            pki::issue(&dir, Role::Broker, &broker_host)?;
            rename_broker(&dir, &broker_host)?;
            pki::issue(&dir, Role::Operator, "")?;
            for d in &devices {
                pki::issue(&dir, Role::Device, d)?;
            }
            report_pki(json, &dir, &devices, true)?;
        }
        Top::Pki(PkiCmd::Issue {
            dir,
            devices,
            operator,
        }) => {
            if operator {
                pki::issue(&dir, Role::Operator, "")?;
            }
            for d in &devices {
                pki::issue(&dir, Role::Device, d)?;
            }
            report_pki(json, &dir, &devices, operator)?;
        }
        Top::Provision {
            pki,
            device,
            broker,
            labels,
            ingest_listen,
            keystore,
            out,
        } => {
            let (host, port) = match broker.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') || h.starts_with('[') => (
                    h.trim_matches(|c| c == '[' || c == ']').to_string(),
                    p.parse::<u16>()
                        .with_context(|| format!("--broker {broker}: bad port"))?,
                ),
                _ => (broker.clone(), 8883),
            };
            let labels = labels
                .iter()
                .map(|l| {
                    l.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .with_context(|| format!("--label {l}: expected KEY=VALUE"))
                })
                .collect::<anyhow::Result<_>>()?;
            let dir = fleet::provision::write(
                &fleet::provision::Provision {
                    pki,
                    device,
                    broker_host: host,
                    broker_port: port,
                    labels,
                    ingest_listen,
                    keystore,
                },
                &out,
            )?;
            if json {
                print_json(&serde_json::json!({"dir": dir}))?;
            } else {
                println!(
                    "wrote {}: copy it onto the flashed disk's EFI system partition (as provision/)",
                    dir.display()
                );
            }
        }
        Top::BrokerConfig {
            pki,
            state,
            port,
            bind,
            user,
            out,
        } => {
            std::fs::create_dir_all(&out)?;
            let acl = out.join("acl");
            std::fs::write(&acl, fleet::testkit::ACL)?;
            let conf = out.join("mosquitto.conf");
            std::fs::write(
                &conf,
                fleet::testkit::render_conf(port, &bind, &pki, &state, &acl, &user),
            )?;
            if json {
                print_json(&serde_json::json!({"conf": conf, "acl": acl}))?;
            } else {
                println!("wrote {} and {}", conf.display(), acl.display());
            }
        }
        Top::Serve {
            conn,
            listen,
            passwords,
            state_dir,
            history,
        } => {
            let op = conn.connect().await?;
            let opts = fleet::console::ServeOptions {
                listen,
                passwords,
                state_dir,
                history,
            };
            fleet::console::serve(
                opts,
                op,
                |addr| {
                    println!("listening on http://{addr}");
                    let _ = std::io::stdout().flush();
                },
                shutdown_signal(),
            )
            .await?;
        }
        Top::Passwd { file, user } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']);
            fleet::console::auth::add_user(&file, &user, password)?;
            if !json {
                println!("{user} can log in with {}", file.display());
            }
        }
        Top::Rollout { api, cmd } => return rollout_cmd(json, api, cmd).await,
        Top::Device {
            config,
            max_sessions,
        } => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct File {
                fleet: fleet::DeviceConfig,
            }
            let text = std::fs::read_to_string(&config)
                .with_context(|| format!("reading {}", config.display()))?;
            let f: File =
                toml::from_str(&text).with_context(|| format!("parsing {}", config.display()))?;
            let hooks = Arc::new(
                fleet::standalone::StandaloneHooks::new(log).with_session_cap(max_sessions),
            );
            fleet::device::run(f.fleet, hooks, shutdown_signal()).await?;
        }
        Top::List { conn, select } => {
            let sel: Option<Selector> = select.as_deref().map(str::parse).transpose()?;
            let mut op = conn.connect().await?;
            let devs = op.snapshot(Duration::from_millis(300)).await?;
            let rows: Vec<&DeviceView> = devs
                .values()
                .filter(|d| sel.as_ref().is_none_or(|s| s.matches(d)))
                .collect();
            if json {
                print_json(&rows.iter().map(|d| list_row(d)).collect::<Vec<_>>())?;
            } else {
                println!(
                    "{:<20} {:<8} {:<10} {:<8} {:<8} {:>5} {:>5} {:>7} {:>6}",
                    "DEVICE",
                    "STATE",
                    "LAST SEEN",
                    "ENCODER",
                    "VERSION",
                    "CPU%",
                    "LOAD",
                    "STREAMS",
                    "CONFIG"
                );
                for d in rows {
                    let t = d.telemetry.as_ref();
                    let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
                    println!(
                        "{:<20} {:<8} {:<10} {:<8} {:<8} {:>5} {:>5} {:>7} {:>6}",
                        d.id,
                        if d.online() { "online" } else { "offline" },
                        ago(d.last_seen_ms()),
                        d.encoder().unwrap_or("-"),
                        d.version().unwrap_or("-"),
                        f(t.and_then(|t| t.system.cpu_percent)),
                        f(t.and_then(|t| t.system.load1)),
                        t.and_then(|t| t.daemon.streams)
                            .map_or("-".into(), |s| s.to_string()),
                        d.reported
                            .as_ref()
                            .map_or("-".into(), |r| r.applied_version.to_string()),
                    );
                }
            }
        }
        Top::Show { conn, device } => {
            let mut op = conn.connect().await?;
            let devs = op.snapshot(Duration::from_millis(300)).await?;
            let d = devs
                .get(&device)
                .with_context(|| format!("no device `{device}` known to the broker"))?;
            if json {
                print_json(d)?;
            } else {
                println!("{}", serde_json::to_string_pretty(d)?);
            }
        }
        Top::Config(ConfigCmd::Get { conn, device }) => {
            let mut op = conn.connect().await?;
            let devs = op.snapshot(Duration::from_millis(300)).await?;
            let d = devs
                .get(&device)
                .with_context(|| format!("no device `{device}` known to the broker"))?;
            let v =
                serde_json::json!({"device": device, "desired": d.desired, "reported": d.reported});
            if json {
                print_json(&v)?;
            } else {
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
        }
        Top::Config(ConfigCmd::Set {
            conn,
            device,
            select,
            file,
            sets,
            version,
            wait,
        }) => {
            let from_file: Option<RuntimeConfig> = match &file {
                Some(f) => Some(
                    serde_json::from_str(
                        &std::fs::read_to_string(f)
                            .with_context(|| format!("reading {}", f.display()))?,
                    )
                    .with_context(|| format!("parsing {}", f.display()))?,
                ),
                None => None,
            };
            if from_file.is_none() && sets.is_empty() {
                bail!("nothing to set: give --file and/or --set key=value");
            }
            let mut op = conn.connect().await?;
            let devs = op.snapshot(Duration::from_millis(300)).await?.clone();
            let targets: Vec<DeviceView> = match (&device, &select) {
                (Some(d), None) => vec![devs.get(d).cloned().unwrap_or_else(|| DeviceView {
                    id: d.clone(),
                    ..Default::default()
                })],
                (None, Some(s)) => {
                    let sel: Selector = s.parse()?;
                    devs.values().filter(|d| sel.matches(d)).cloned().collect()
                }
                _ => bail!("give a DEVICE or --select"),
            };
            let mut rows = Vec::new();
            let mut sent = Vec::new();
            for t in &targets {
                let base = from_file
                    .clone()
                    .or_else(|| t.desired.as_ref().map(|d| d.config.clone()))
                    .unwrap_or_default();
                let config = merge_config(base, &sets)?;
                fleet::validate::runtime_config(&config).map_err(|e| anyhow::anyhow!(e))?;
                let v = version.unwrap_or_else(|| t.next_version());
                op.set_desired(&t.id, &DesiredDoc { version: v, config })
                    .await?;
                sent.push((t.id.clone(), v));
            }
            let mut failed = 0;
            for (id, v) in sent {
                let outcome = if wait == 0 {
                    serde_json::json!({"device": id, "version": v, "state": "sent"})
                } else {
                    match op.wait_reported(&id, v, Duration::from_secs(wait)).await {
                        Ok(Ok(_)) => {
                            serde_json::json!({"device": id, "version": v, "state": "applied"})
                        }
                        Ok(Err(reason)) => {
                            failed += 1;
                            serde_json::json!({"device": id, "version": v, "state": "refused", "error": reason})
                        }
                        Err(e) => {
                            failed += 1;
                            serde_json::json!({"device": id, "version": v, "state": "pending", "error": e.to_string()})
                        }
                    }
                };
                rows.push(outcome);
            }
            if json {
                print_json(&rows)?;
            } else {
                if rows.is_empty() {
                    println!("no device matched");
                }
                for r in &rows {
                    println!(
                        "{:<20} v{:<5} {:<8} {}",
                        r["device"].as_str().unwrap_or(""),
                        r["version"],
                        r["state"].as_str().unwrap_or(""),
                        r["error"].as_str().unwrap_or("")
                    );
                }
            }
            op.disconnect().await;
            return Ok(if failed > 0 { 1 } else { 0 });
        }
        Top::Cmd {
            conn,
            device,
            name,
            args,
            id,
            timeout,
            expiry,
        } => {
            let args = parse_args(&args)?;
            let req = CommandRequest {
                id: id.unwrap_or_else(|| hex::encode(rand::random::<[u8; 8]>())),
                name,
                args,
            };
            let mut op = conn.connect().await?;
            let r = op
                .command(
                    &device,
                    &req,
                    Duration::from_secs(expiry),
                    Duration::from_secs(timeout),
                )
                .await
                .with_context(|| format!("command `{}` on {device}", req.name))?;
            if json {
                print_json(&r)?;
            } else if r.ok {
                println!(
                    "ok{} {}",
                    if r.duplicate {
                        " (stored result of an earlier run)"
                    } else {
                        ""
                    },
                    r.result
                        .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
                        .unwrap_or_default()
                );
            } else {
                println!("failed: {}", r.error.as_deref().unwrap_or("?"));
            }
            op.disconnect().await;
            return Ok(if r.ok { 0 } else { 1 });
        }
        Top::Watch { conn, duration } => {
            let mut op = conn.connect().await?;
            op.follow().await?;
            let end = duration.map(|s| std::time::Instant::now() + Duration::from_secs(s));
            loop {
                let left = end.map_or(Duration::from_secs(3600), |e| {
                    e.saturating_duration_since(std::time::Instant::now())
                });
                if left.is_zero() {
                    break;
                }
                let Some(ev) = op.next_event(left).await? else {
                    continue;
                };
                if json {
                    print_json(&ev)?;
                    continue;
                }
                match ev {
                    FleetEvent::Status { device, status } => {
                        println!("{device:<20} status    {:?}", status.state)
                    }
                    FleetEvent::Telemetry {
                        device,
                        telemetry: t,
                    } => println!(
                        "{device:<20} telemetry seq={} encoder={} streams={} cpu={} mem_avail={}",
                        t.seq,
                        t.daemon.encoder.as_deref().unwrap_or("-"),
                        t.daemon.streams.map_or("-".into(), |s| s.to_string()),
                        t.system
                            .cpu_percent
                            .map_or("-".into(), |c| format!("{c:.1}%")),
                        t.system
                            .mem_available_bytes
                            .map_or("-".into(), |m| format!("{}MiB", m >> 20)),
                    ),
                    FleetEvent::Desired { device, desired } => {
                        println!("{device:<20} desired   v{}", desired.version)
                    }
                    FleetEvent::Reported { device, reported } => println!(
                        "{device:<20} reported  applied v{}{}",
                        reported.applied_version,
                        reported
                            .last_error
                            .map(|e| format!(" (refused v{:?}: {})", e.version, e.reason))
                            .unwrap_or_default()
                    ),
                    FleetEvent::Unparsable {
                        device,
                        topic,
                        error,
                    } => println!("{device:<20} unparsable {topic}: {error}"),
                    FleetEvent::CommandResult { device, result } => {
                        println!("{device:<20} result    {:?} ok={}", result.id, result.ok)
                    }
                }
            }
        }
    }
    Ok(0)
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn print_rollout(r: &Rollout, targets: bool) {
    println!(
        "rollout {:<4} {:<12} wave {}/{}  {} boxes  {}  {}",
        r.id,
        r.phase.as_str(),
        (r.wave + 1).min(r.waves),
        r.waves,
        r.targets.len(),
        r.spec.selector,
        r.note.as_deref().unwrap_or("")
    );
    if targets {
        // a config's versions are numbers; an image's are its names
        let new = |t: &fleet::console::rollout::Target| match &r.spec.image {
            Some(i) => format!("image {}", i.version),
            None => format!("v{}", t.version),
        };
        let old = |version: u64| match &r.spec.rollback_image {
            Some(i) => format!("image {}", i.version),
            None => format!("v{version}"),
        };
        for t in &r.targets {
            let (state, why) = match &t.state {
                TargetState::Waiting => ("waiting".to_string(), String::new()),
                TargetState::Sent { .. } => (format!("sent {}", new(t)), String::new()),
                TargetState::Applied { .. } => (format!("applied {}", new(t)), String::new()),
                TargetState::Failed { reason, .. } => ("FAILED".into(), reason.clone()),
                TargetState::RollingBack { version, .. } => {
                    (format!("rolling back to {}", old(*version)), String::new())
                }
                TargetState::RolledBack { version, .. } => {
                    (format!("rolled back to {}", old(*version)), String::new())
                }
                TargetState::RollbackFailed { version, reason } => {
                    (format!("ROLLBACK FAILED {}", old(*version)), reason.clone())
                }
            };
            println!(
                "  {:<20} wave {:<2} {:<20} {why}",
                t.device,
                t.wave + 1,
                state
            );
        }
    }
}

async fn rollout_cmd(json: bool, api: Api, cmd: RolloutCmd) -> anyhow::Result<i32> {
    let c = fleet::console::client::Client::new(&api.url, &api.user, &api.password)?;
    let one = match cmd {
        RolloutCmd::Start {
            select,
            file,
            sets,
            image,
            rollback_image,
            canary,
            waves,
            soak,
            report_timeout,
            max_failures,
            auto_rollback,
        } => {
            let bundle = |args: &[String]| -> anyhow::Result<Option<UpdateRequest>> {
                if args.is_empty() {
                    return Ok(None);
                }
                // every value a string: a version `2` stays "2"
                let mut m = serde_json::Map::new();
                for kv in args {
                    let (k, v) = kv
                        .split_once('=')
                        .with_context(|| format!("`{kv}` is not key=value"))?;
                    m.insert(k.into(), serde_json::Value::String(v.into()));
                }
                serde_json::from_value(serde_json::Value::Object(m))
                    .map(Some)
                    .context(
                        "expected url=… sha256=… version=…, or swarm=… peers=… sha256=… version=…",
                    )
            };
            let mut spec = RolloutSpec {
                selector: select,
                config: None,
                image: bundle(&image)?,
                rollback_image: bundle(&rollback_image)?,
                canary,
                waves,
                soak_s: soak,
                report_timeout_s: report_timeout,
                max_failure_ratio: max_failures,
                auto_rollback,
            };
            if spec.image.is_some() {
                spec.check().map_err(|e| anyhow::anyhow!(e))?;
                return print_rollout_answer(json, &c.start(&spec).await?);
            }
            let base: RuntimeConfig = match &file {
                Some(f) => serde_json::from_str(
                    &std::fs::read_to_string(f)
                        .with_context(|| format!("reading {}", f.display()))?,
                )
                .with_context(|| format!("parsing {}", f.display()))?,
                None => RuntimeConfig::default(),
            };
            if file.is_none() && sets.is_empty() {
                bail!("nothing to roll out: give --file and/or --set key=value");
            }
            spec.config = Some(merge_config(base, &sets)?);
            spec.check().map_err(|e| anyhow::anyhow!(e))?;
            c.start(&spec).await?
        }
        RolloutCmd::Status { id: None } => {
            let all = c.list().await?;
            if json {
                print_json(&all)?;
            } else {
                for r in &all {
                    print_rollout(r, false);
                }
            }
            return Ok(0);
        }
        RolloutCmd::Status { id: Some(id) } => c.get(&id).await?,
        RolloutCmd::Pause { id } => c.act(&id, "pause").await?,
        RolloutCmd::Resume { id } => c.act(&id, "resume").await?,
        RolloutCmd::Abort { id } => c.act(&id, "abort").await?,
        RolloutCmd::Rollback { id } => c.act(&id, "rollback").await?,
    };
    print_rollout_answer(json, &one)
}

fn print_rollout_answer(json: bool, one: &Rollout) -> anyhow::Result<i32> {
    if json {
        print_json(one)?;
    } else {
        print_rollout(one, true);
    }
    Ok(0)
}

fn parse_args(args: &[String]) -> anyhow::Result<serde_json::Value> {
    match args {
        [] => Ok(serde_json::Value::Null),
        [one] if one.trim_start().starts_with('{') => {
            serde_json::from_str(one).context("ARGS JSON")
        }
        kvs => {
            let mut m = serde_json::Map::new();
            for kv in kvs {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("argument `{kv}` is not key=value"))?;
                let v =
                    serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.into()));
                m.insert(k.into(), v);
            }
            Ok(serde_json::Value::Object(m))
        }
    }
}

fn rename_broker(dir: &Path, hosts: &str) -> anyhow::Result<()> {
    let host = hosts
        .split(',')
        .map(str::trim)
        .find(|h| !h.is_empty())
        .unwrap_or(hosts);
    std::fs::rename(dir.join(format!("{host}.pem")), dir.join("broker.pem"))?;
    std::fs::rename(dir.join(format!("{host}.key")), dir.join("broker.key"))?;
    Ok(())
}

fn report_pki(json: bool, dir: &Path, devices: &[String], operator: bool) -> anyhow::Result<()> {
    if json {
        print_json(&serde_json::json!({"dir": dir, "devices": devices, "operator": operator}))?;
    } else {
        println!(
            "PKI in {}: devices {:?}{}",
            dir.display(),
            devices,
            if operator { ", operator" } else { "" }
        );
    }
    Ok(())
}
