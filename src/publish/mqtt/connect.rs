//! What happens when a connection opens or is refused: the words an
//! operator reads for a refusal, and the retained messages a connect
//! publishes before any spooled data.
use std::collections::BTreeSet;

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

/// The retained messages a connect publishes, in order: `online` on the
/// status topic every time; on the first connect of this process also an
/// empty payload (which deletes a retained message) for each topic retained
/// last time and no longer configured anywhere (a topic of a site another
/// shard now owns, `elsewhere`, stays), then the discovery configs.
pub fn announcements(
    status_topic: &str,
    first: bool,
    retained_last_time: &BTreeSet<String>,
    topics: &BTreeSet<String>,
    elsewhere: &BTreeSet<String>,
    discovery: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out = vec![(status_topic.to_string(), "online".to_string())];
    if first {
        out.extend(
            retained_last_time
                .iter()
                .filter(|t| !topics.contains(*t) && !elsewhere.contains(*t))
                .map(|stale| (stale.clone(), String::new())),
        );
        out.extend(discovery.iter().cloned());
    }
    out
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
        let first = announcements("b/i/status", true, &last, &now, &moved, &discovery);
        let topics: Vec<(&str, &str)> = first
            .iter()
            .map(|(t, p)| (t.as_str(), p.as_str()))
            .collect();
        assert_eq!(
            topics,
            [
                ("b/i/status", "online"),
                ("b/lab/old/state", ""),
                ("ha/sensor/x/config", "{}"),
            ]
        );
        let again = announcements("b/i/status", false, &last, &now, &moved, &discovery);
        assert_eq!(again, [("b/i/status".to_string(), "online".to_string())]);
    }

    #[test]
    fn refusals_say_what_to_check() {
        assert!(refusal(ConnectReturnCode::NotAuthorized).contains("mqtt.username"));
        assert!(refusal(ConnectReturnCode::BadUserNamePassword).contains("username or password"));
        assert!(refusal(ConnectReturnCode::ServiceUnavailable).contains("ServiceUnavailable"));
    }
}
