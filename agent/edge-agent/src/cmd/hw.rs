//! `edge-agent hw`: what the box has (encoders, decoders, session limits, drivers) and what will be used,
//! and why.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON (`{"inventory": …, "selection": …}`).
    #[arg(long)]
    json: bool,
    /// Configuration file (its `[hw]` table: board override, boards_dir, force_software; `[media]` ladder
    /// and segment mode; `[agent]` data_dir, where the calibration is kept).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// How many streams of the ladder this box carries in real time, measured with the real pipeline on the
    /// chosen encoder (k streams at once, k = 1, 2, … until the slowest one loses its 20 % headroom) and
    /// cached in `<data_dir>/hw/capacity.json` for this agent version, board, encoder and ladder; a cached
    /// figure is shown without measuring again. The daemon takes it as its session limit.
    #[arg(long)]
    calibrate: bool,
    /// Measure again even when a calibration is cached.
    #[arg(long, requires = "calibrate")]
    again: bool,
}

fn calibration(
    cfg: &crate::config::Config,
    st: &crate::hwsel::HwState,
    again: bool,
) -> anyhow::Result<crate::capacity::Cached> {
    let key = crate::capacity::key(cfg, st);
    match crate::capacity::cached(&cfg.agent.data_dir, &key) {
        Some(c) if !again => Ok(c),
        _ => {
            eprintln!(
                "calibrating: up to {} stream(s) of {}x{}@{} at once, {} s of video each …",
                key.input.max_streams,
                key.input.width,
                key.input.height,
                key.input.fps,
                key.input.seconds
            );
            crate::capacity::calibrate(cfg, st)
        }
    }
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
    let measured = if args.calibrate {
        Some(calibration(&cfg, &st, args.again)?)
    } else {
        crate::capacity::cached(&cfg.agent.data_dir, &crate::capacity::key(&cfg, &st))
    };
    if args.json {
        let out = serde_json::json!({
            "inventory": st.inventory,
            "selection": st.selection,
            "streams_limit": st.session_limit(),
            "calibration": measured,
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
    match &measured {
        Some(c) => {
            let cal = &c.calibration;
            println!(
                "measured:  {} stream(s) of {} in real time with {:.0} % to spare ({}x{}@{} input, {} mode){}",
                cal.streams,
                c.key.ladder.join(", "),
                (cal.input.headroom - 1.0) * 100.0,
                cal.input.width,
                cal.input.height,
                cal.input.fps,
                c.key.segment_mode.as_str(),
                if cal.below_realtime {
                    "; NOT even one in real time"
                } else {
                    ""
                }
            );
            for t in &cal.trials {
                println!(
                    "  {} at once: slowest {:.2}x realtime, mean {:.2}x ({:.1} s)",
                    t.streams, t.slowest_realtime, t.mean_realtime, t.wall_s
                );
            }
        }
        None => println!("measured:  not yet (`edge-agent hw --calibrate`)"),
    }
    Ok(())
}
