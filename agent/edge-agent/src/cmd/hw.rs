//! `edge-agent hw`: what the box has (encoders, decoders, session limits, drivers) and what will be used,
//! and why.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON (`{"inventory": …, "selection": …}`).
    #[arg(long)]
    json: bool,
    /// Configuration file (its `[hw]` table: board override, boards_dir, force_software).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

fn status(s: &hw::ElementStatus) -> String {
    match s {
        hw::ElementStatus::Ready => "ready".into(),
        hw::ElementStatus::Missing => "missing".into(),
        hw::ElementStatus::Failed { error } => format!("failed: {error}"),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = crate::config::Config::load(args.config.as_deref(), std::env::vars())?;
    let st = crate::hwsel::probe_for_ladder(&cfg.hw, cfg.media.ladder.len())?;
    if args.json {
        let out = serde_json::json!({
            "inventory": st.inventory,
            "selection": st.selection,
            "streams_limit": st.session_limit(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let inv = &st.inventory;
    let sel = &st.selection;
    println!(
        "board:     {}",
        inv.board.as_deref().unwrap_or("(no profile matched)")
    );
    println!(
        "cpu:       {} ({} cores)",
        inv.cpu_model.as_deref().unwrap_or("unknown"),
        inv.cpu_cores
    );
    let d = &inv.drivers;
    println!(
        "devices:   render nodes: {}; nvidia: {}; tegra: {}",
        if d.render_nodes.is_empty() {
            "none".into()
        } else {
            d.render_nodes.join(", ")
        },
        d.nvidia.as_deref().unwrap_or("no"),
        d.tegra.as_deref().unwrap_or("no"),
    );
    for (title, list) in [("encoders:", &inv.encoders), ("decoders:", &inv.decoders)] {
        println!("{title}");
        for e in list {
            println!(
                "  {:<16} {:<12} {}{}",
                e.element,
                format!("{:?}", e.kind).to_lowercase(),
                status(&e.status),
                if e.usable || e.device_present {
                    ""
                } else {
                    " (no device)"
                },
            );
        }
    }
    if !inv.sessions.is_empty() {
        println!("sessions:");
        for s in &inv.sessions {
            println!(
                "  {:<16} {}",
                s.element,
                s.max.map_or("no known cap".to_string(), |m| format!(
                    "{m} concurrent encodes"
                ))
            );
        }
    }
    println!();
    println!(
        "using:     {} + {} (board {}){}",
        sel.encoder,
        sel.decoder,
        sel.board,
        if sel.fallback {
            ", software fallback"
        } else {
            ""
        }
    );
    println!("why:       {}", sel.reason);
    println!(
        "capacity:  {} encode sessions = {} stream(s) of the {}-rendition ladder",
        sel.session_limit
            .map_or("unlimited".into(), |n| n.to_string()),
        st.session_limit(),
        cfg.media.ladder.len()
    );
    Ok(())
}
