//! `edge-agent profiles`: the profile table (standard ladder plus configured custom profiles) with IDs.

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Configuration file whose custom profiles are listed too.
    #[arg(long, short)]
    config: Option<std::path::PathBuf>,
    /// Decode a job's transcodingOptions (concatenated 8-hex-digit IDs) instead of listing all profiles.
    #[arg(long)]
    options: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = crate::config::Config::load(args.config.as_deref(), std::env::vars())?;
    let set = cfg.profile_set()?;
    let profiles = match &args.options {
        Some(o) => set
            .parse_options(o)
            .context("decoding transcodingOptions")?,
        None => set.all().to_vec(),
    };
    if args.json {
        let rows: Vec<_> = profiles
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name, "id": p.id_hex(), "width": p.width, "height": p.height,
                    "fps": p.fps, "bitrate_kbps": p.bitrate_kbps,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!(
            "{:<18} {:<8} {:>9} {:>4} {:>8}",
            "NAME", "ID", "SIZE", "FPS", "KBPS"
        );
        for p in &profiles {
            println!(
                "{:<18} {:<8} {:>9} {:>4} {:>8}",
                p.name,
                p.id_hex(),
                format!("{}x{}", p.width, p.height),
                p.fps,
                p.bitrate_kbps
            );
        }
    }
    Ok(())
}
