//! Accelerator detection and board profiles for edge transcoder boxes.
//!
//! Two halves:
//! * [`probe`] gathers a serializable [`SystemDescription`] from the running box (render nodes and
//!   their drivers, NVIDIA and Tegra release files, DMI, CPU, and which GStreamer elements exist
//!   and reach READY);
//! * [`choose`] is pure logic over a description and the [`Boards`] profiles, producing an
//!   [`Inventory`] (what the box has) and a [`Selection`] (what the media engine should use, why).
//!
//! ```no_run
//! let boards = hw::Boards::load(None)?;
//! let (inventory, selection) = hw::detect(&boards)?;
//! selection.log();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod board;
pub mod choose;
pub mod description;
pub mod probe;

pub use board::{BoardError, BoardProfile, Boards, EncoderKind};
pub use choose::{Inventory, SelectError, Selection, inventory, select};
pub use description::{ElementStatus, SystemDescription};

/// The software encoder every box falls back to.
pub const SOFTWARE_ENCODER: &str = "x264enc";
/// The software decoder every box falls back to.
pub const SOFTWARE_DECODER: &str = "avdec_h264";

/// Probes this box and chooses: what `edge-agent hw` and the media engine call.
pub fn detect(boards: &Boards) -> Result<(Inventory, Selection), SelectError> {
    let description = probe::probe(&boards.element_names());
    let inv = inventory(&description, boards);
    let sel = select(&description, boards)?;
    Ok((inv, sel))
}
