//! Logs availability changes and errors as they happen, and optionally readings.
use std::collections::HashMap;
use std::sync::Arc;

use crate::acquire::decode::Value;
use crate::acquire::Sample;
use crate::log_throttle::LogThrottle;

#[derive(Default)]
pub struct Availability {
    online: HashMap<(Arc<str>, Arc<str>), (bool, u64)>,
    /// Errors and missed polls of a device that stays online repeat every poll.
    pub log: LogThrottle,
}

impl Availability {
    pub fn observe(&mut self, s: &Sample, every: u64) {
        let key = (s.device.site.clone(), s.device.device.clone());
        let entry = self.online.entry(key.clone()).or_insert((!s.online, 0));
        let changed = entry.0 != s.online;
        entry.0 = s.online;
        entry.1 += 1;
        let n = entry.1;
        if changed {
            if s.online {
                tracing::info!("{}/{} online", key.0, key.1);
            } else {
                let why = s.errors.first().map(|e| e.to_string()).unwrap_or_default();
                tracing::warn!("{}/{} offline: {why}", key.0, key.1);
            }
        } else if s.online && !s.errors.is_empty() {
            let scope = format!("{}/{}", key.0, key.1);
            for e in &s.errors {
                self.log.warn(&scope, &e.to_string());
            }
        }
        if s.missed > 0 {
            let scope = format!("{}/{}", key.0, key.1);
            self.log.warn(
                &scope,
                &format!(
                    "{scope}: {} poll(s) missed (poll overran its interval)",
                    s.missed
                ),
            );
        }
        if every > 0 && n % every == 1 && s.online {
            let values: Vec<String> = s
                .readings
                .iter()
                .filter(|r| !s.device.profile.points[r.point].is_scale_factor)
                .map(|r| {
                    let p = &s.device.profile.points[r.point];
                    let v = match r.value {
                        Value::Num(x) => format!("{}", (x * 1000.0).round() / 1000.0),
                        ref other => other.to_string(),
                    };
                    format!(
                        "{}={v}{}{}",
                        p.name,
                        p.unit.as_deref().unwrap_or(""),
                        if r.valid { "" } else { "(invalid)" }
                    )
                })
                .collect();
            tracing::info!(
                "{}/{} @ {}: {}",
                key.0,
                key.1,
                crate::timefmt::rfc3339(s.at),
                values.join(" ")
            );
        }
    }
}
