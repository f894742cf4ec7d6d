//! Prints this box's `SystemDescription` as JSON (how the files in `hw/testdata/` are captured),
//! or with `--choose`, the inventory and selection.  `HW_BOARDS_DIR` adds/overrides profiles.
//!
//!     cargo run -p hw --example probe > hw/testdata/mybox.json
//!     cargo run -p hw --example probe -- --choose

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var_os("HW_BOARDS_DIR").map(std::path::PathBuf::from);
    let boards = hw::Boards::load(dir.as_deref())?;
    let description = hw::probe::probe(&boards.element_names());
    if std::env::args().any(|a| a == "--choose") {
        let out = serde_json::json!({
            "inventory": hw::inventory(&description, &boards),
            "selection": hw::select(&description, &boards)?,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&description)?);
    }
    Ok(())
}
