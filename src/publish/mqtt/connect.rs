//! What happens when a connection opens or is refused: the words an
//! operator reads for a refusal, and the retained messages a connect
//! publishes before any spooled data.
use std::collections::{BTreeMap, BTreeSet};

use rumqttc::ConnectReturnCode;

/// Why the broker said no, in the operator's terms.
pub fn refusal(code: ConnectReturnCode) -> String {
    match code {
        ConnectReturnCode::BadUserNamePassword => {
            "the broker refused the username or password".to_string()
        }
        // Mosquitto answers a wrong password with "not authorised".
        ConnectReturnCode::NotAuthorized => "the broker refused the connection as not authorised (check mqtt.username and the password)".to_string(),
        other => format!("the broker refused the connection ({other:?})"),
    }
}

/// The retained messages a connect publishes before any spooled data, in
/// order: `online` on the status topic; on the first connect of this process
/// an empty payload (which deletes a retained message) for each topic
/// retained last time and no longer configured anywhere (a topic of a site
/// another shard now owns, `elsewhere`, stays); the discovery configs; then
/// the latest message of every retained topic this process has published
/// (`latest`), so a broker that restarted without persistence, or a
/// subscriber that came after it, has the whole state again at once.
pub fn announcements(
    status_topic: &str,
    first: bool,
    retained_last_time: &BTreeSet<String>,
    topics: &BTreeSet<String>,
    elsewhere: &BTreeSet<String>,
    discovery: &[(String, String)],
    latest: &BTreeMap<String, Vec<u8>>,
) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![(status_topic.to_string(), b"online".to_vec())];
    if first {
        out.extend(
            retained_last_time
                .iter()
                .filter(|t| !topics.contains(*t) && !elsewhere.contains(*t))
                .map(|stale| (stale.clone(), Vec::new())),
        );
    }
    out.extend(rebirth(discovery, latest));
    out
}

/// What Home Assistant needs again when it announces itself (its birth
/// message): the discovery configs, then every entity's latest state.
pub fn rebirth(
    discovery: &[(String, String)],
    latest: &BTreeMap<String, Vec<u8>>,
) -> Vec<(String, Vec<u8>)> {
    discovery
        .iter()
        .map(|(t, p)| (t.clone(), p.clone().into_bytes()))
        .chain(latest.iter().map(|(t, p)| (t.clone(), p.clone())))
        .collect()
}

/// Whether an incoming message is Home Assistant's birth message.
pub fn is_birth(discovery_prefix: &str, topic: &str, payload: &[u8]) -> bool {
    topic.strip_prefix(discovery_prefix) == Some("/status") && payload == b"online"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_connect_clears_what_no_shard_publishes_then_announces() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let last = set(&["b/lab/old/state", "b/lab/pcs/state", "b/moved/savings"]);
        let now = set(&["b/lab/pcs/state", "b/lab/savings"]);
        let moved = set(&["b/moved/savings"]);
        let discovery = [("ha/sensor/x/config".to_string(), "{}".to_string())];
        let latest =
            BTreeMap::from([("b/lab/tariff".to_string(), b"{\"band\":\"peak\"}".to_vec())]);
        let text = |v: Vec<(String, Vec<u8>)>| {
            v.into_iter()
                .map(|(t, p)| (t, String::from_utf8(p).unwrap()))
                .collect::<Vec<_>>()
        };
        let first = announcements("b/i/status", true, &last, &now, &moved, &discovery, &latest);
        let want = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(t, p)| (t.to_string(), p.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            text(first),
            want(&[
                ("b/i/status", "online"),
                ("b/lab/old/state", ""),
                ("ha/sensor/x/config", "{}"),
                ("b/lab/tariff", "{\"band\":\"peak\"}"),
            ])
        );
        // A reconnect clears nothing more but restores everything.
        let again = announcements(
            "b/i/status",
            false,
            &last,
            &now,
            &moved,
            &discovery,
            &latest,
        );
        assert_eq!(
            text(again),
            want(&[
                ("b/i/status", "online"),
                ("ha/sensor/x/config", "{}"),
                ("b/lab/tariff", "{\"band\":\"peak\"}"),
            ])
        );
    }

    #[test]
    fn home_assistants_birth_is_its_status_topic_saying_online() {
        assert!(is_birth("homeassistant", "homeassistant/status", b"online"));
        assert!(!is_birth(
            "homeassistant",
            "homeassistant/status",
            b"offline"
        ));
        assert!(!is_birth(
            "homeassistant",
            "homeassistant/statuses",
            b"online"
        ));
        assert!(!is_birth("ha", "homeassistant/status", b"online"));
    }

    #[test]
    fn refusals_say_what_to_check() {
        assert!(refusal(ConnectReturnCode::NotAuthorized).contains("mqtt.username"));
        assert!(refusal(ConnectReturnCode::BadUserNamePassword).contains("username or password"));
        assert!(refusal(ConnectReturnCode::ServiceUnavailable).contains("ServiceUnavailable"));
    }
}
