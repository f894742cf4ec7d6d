//! Every MQTT topic string of the fleet lives here and nowhere else.
//!
//! Layout (one subtree per device; the broker ACL `pattern readwrite fleet/%u/#` confines a device to it):
//!
//! | topic                              | writer   | retained | payload                 |
//! |------------------------------------|----------|----------|-------------------------|
//! | `fleet/{id}/status`                | device   | yes      | [`crate::proto::Status`] (Last Will = offline) |
//! | `fleet/{id}/telemetry`             | device   | yes      | [`crate::proto::Telemetry`] |
//! | `fleet/{id}/config/desired`        | operator | yes      | [`crate::proto::DesiredDoc`] |
//! | `fleet/{id}/config/reported`       | device   | yes      | [`crate::proto::ReportedDoc`] |
//! | `fleet/{id}/cmd/req`               | operator | no       | [`crate::proto::CommandRequest`] |
//! | `fleet/{id}/cmd/res/{requester}`   | device   | no       | [`crate::proto::CommandResult`] |

pub const ROOT: &str = "fleet";

pub fn status(id: &str) -> String {
    format!("{ROOT}/{id}/status")
}
pub fn telemetry(id: &str) -> String {
    format!("{ROOT}/{id}/telemetry")
}
pub fn desired(id: &str) -> String {
    format!("{ROOT}/{id}/config/desired")
}
pub fn reported(id: &str) -> String {
    format!("{ROOT}/{id}/config/reported")
}
pub fn cmd_request(id: &str) -> String {
    format!("{ROOT}/{id}/cmd/req")
}
/// Prefix every command response topic of device `id` must start with (inside the device's subtree).
pub fn cmd_response_prefix(id: &str) -> String {
    format!("{ROOT}/{id}/cmd/res/")
}
pub fn cmd_response(id: &str, requester: &str) -> String {
    format!("{ROOT}/{id}/cmd/res/{requester}")
}
/// Where a device answers a request that carried no usable response topic.
pub fn cmd_response_default(id: &str) -> String {
    format!("{ROOT}/{id}/cmd/res/_")
}

/// Operator-side wildcard subscriptions.
pub const ALL_STATUS: &str = "fleet/+/status";
pub const ALL_TELEMETRY: &str = "fleet/+/telemetry";
pub const ALL_REPORTED: &str = "fleet/+/config/reported";

/// What a topic is, seen from the operator (device id and kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Status,
    Telemetry,
    Desired,
    Reported,
    CmdRequest,
    CmdResponse,
}

/// Splits `fleet/{id}/...` into the device id and the kind of topic; `None` for anything else.
pub fn parse(topic: &str) -> Option<(&str, Kind)> {
    let rest = topic.strip_prefix(ROOT)?.strip_prefix('/')?;
    let (id, tail) = rest.split_once('/')?;
    if !valid_device_id(id) {
        return None;
    }
    let kind = match tail {
        "status" => Kind::Status,
        "telemetry" => Kind::Telemetry,
        "config/desired" => Kind::Desired,
        "config/reported" => Kind::Reported,
        "cmd/req" => Kind::CmdRequest,
        t if t.starts_with("cmd/res/") => Kind::CmdResponse,
        _ => return None,
    };
    Some((id, kind))
}

/// Device ids are certificate CNs used as topic levels: no wildcards, separators or control characters.
pub fn valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        assert_eq!(parse(&status("box-1")), Some(("box-1", Kind::Status)));
        assert_eq!(
            parse(&cmd_response("box-1", "op-abc")),
            Some(("box-1", Kind::CmdResponse))
        );
        assert_eq!(parse("fleet/box-1/other"), None);
        assert_eq!(parse("other/box-1/status"), None);
        assert!(!valid_device_id("a/b"));
        assert!(!valid_device_id("+"));
        assert!(!valid_device_id("#"));
        assert!(!valid_device_id(""));
        assert!(valid_device_id("jetson-07.lab_2"));
    }
}
