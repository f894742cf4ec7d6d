//! PROVISIONAL (not committed): replaced by the mapping over the `hw` crate.
use serde::Serialize;
#[derive(Debug, Clone, Serialize)]
pub struct Sel {
    pub encoder_element: String,
}
#[derive(Debug, Clone, Serialize)]
pub struct HwState {
    pub selection: Sel,
}
impl HwState {
    pub fn session_limit(&self) -> u32 {
        2
    }
    pub fn selection_summary(&self) -> serde_json::Value {
        serde_json::json!({"encoder": self.selection.encoder_element})
    }
    pub fn encoder_element(&self) -> &str {
        &self.selection.encoder_element
    }
    pub fn backend(&self) -> media::Backend {
        media::Backend::default()
    }
}
pub fn probe(_c: &crate::config::HwConfig) -> anyhow::Result<HwState> {
    Ok(HwState {
        selection: Sel {
            encoder_element: "x264enc".into(),
        },
    })
}
