//! Turning samples and the books into events for the sinks: every poll's
//! state and status, availability changes, the tariff band at start and at
//! every change, and savings on a timer and at every band change.
use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;

use crate::account::accountant::Accountant;
use crate::acquire::Sample;
use crate::outbox::Event;

#[derive(Default)]
pub struct Announcer {
    online: HashMap<(Arc<str>, Arc<str>), bool>,
    /// Per site: when the band in force ends.
    tariff_until: HashMap<Arc<str>, Timestamp>,
}

impl Announcer {
    /// `per_poll`: also the per-poll events (state, status), which only sinks want.
    pub fn on_sample(
        &mut self,
        s: &Sample,
        books: &mut Accountant,
        per_poll: bool,
        out: &mut Vec<Event>,
    ) {
        let (site, device) = (s.device.site.clone(), s.device.device.clone());
        if per_poll {
            out.push(Event::PollStatus {
                site: site.clone(),
                device: device.clone(),
                at: s.at,
                online: s.online,
                poll_ms: s.poll_duration.as_secs_f64() * 1000.0,
                errors: s.errors.len() as u32,
                seq: s.seq,
            });
        }
        let was = self
            .online
            .get_mut(&(site.clone(), device.clone()))
            .map(|o| std::mem::replace(o, s.online));
        if was.is_none() {
            self.online.insert((site.clone(), device.clone()), s.online);
        }
        if was != Some(s.online) {
            out.push(Event::Availability {
                site: site.clone(),
                device: device.clone(),
                at: s.at,
                online: s.online,
            });
        }
        if s.online && per_poll {
            let profile = &s.device.profile;
            let values = s
                .readings
                .iter()
                .filter_map(|r| {
                    let v = r.value.as_f64()?;
                    Some((profile.points[r.point].name.clone(), v))
                })
                .collect();
            let invalid = s
                .readings
                .iter()
                .filter(|r| !r.valid)
                .map(|r| profile.points[r.point].name.clone())
                .collect();
            out.push(Event::DeviceState {
                site: site.clone(),
                device,
                at: s.at,
                seq: s.seq,
                values,
                invalid,
            });
        }
        if per_poll && s.online {
            out.extend(site_state(books, &site, &s.device.device, s.at));
        }
        if self
            .tariff_until
            .get(&site)
            .is_none_or(|until| s.at >= *until)
        {
            if let Some(e) = tariff(books, &site, s.at) {
                if let Event::Tariff { until, .. } = &e {
                    self.tariff_until.insert(site.clone(), *until);
                }
                out.push(e);
                // Savings at every band change, so the per-band figures close on the boundary.
                out.extend(savings(books, &site, s.at));
            }
        }
    }

    /// Savings of every site, on the daemon's timer.
    pub fn all_savings(&self, books: &mut Accountant, now: Timestamp, out: &mut Vec<Event>) {
        let mut sites: Vec<Arc<str>> = books.sites.keys().cloned().collect();
        sites.sort();
        for site in sites {
            out.extend(savings(books, &site, now));
        }
    }
}

fn tariff(books: &Accountant, site: &str, at: Timestamp) -> Option<Event> {
    let acc = books.sites.get(site)?;
    let t = &acc.setup.tariff;
    let (seg, until, _) = t.next_change(at);
    Some(Event::Tariff {
        site: acc.setup.site.clone(),
        at,
        band: t.bands[seg.band as usize].clone(),
        price: seg.price,
        currency: t.currency.clone(),
        until,
    })
}

/// The site's state by role, when `device` is the one whose polls pace it:
/// the battery power's source, else the SOC's (one event per poll cycle,
/// whatever the number of devices).
fn site_state(books: &Accountant, site: &str, device: &str, at: Timestamp) -> Option<Event> {
    use crate::role::Role;
    let acc = books.sites.get(site)?;
    let source = |role: Role| {
        acc.setup
            .sources
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, d)| d.clone())
    };
    let pace = source(Role::BatteryPower).or_else(|| source(Role::Soc))?;
    if *pace != *device {
        return None;
    }
    let live = |role: Role| acc.live.get(&role).map(|(_, v)| *v);
    let t = &acc.setup.tariff;
    let seg = t.segment_at(at);
    Some(Event::SiteState {
        site: acc.setup.site.clone(),
        at,
        soc: live(Role::Soc),
        battery_power_kw: live(Role::BatteryPower),
        grid_power_kw: live(Role::GridPower),
        band: t.bands[seg.band as usize].clone(),
        price: seg.price,
    })
}

fn savings(books: &mut Accountant, site: &str, at: Timestamp) -> Option<Event> {
    let (today, month, lifetime) = books.savings_reports(site, at)?;
    let acc = books.sites.get(site)?;
    Some(Event::Savings {
        site: acc.setup.site.clone(),
        at,
        currency: acc.setup.tariff.currency.clone(),
        today: Box::new(today),
        month: Box::new(month),
        lifetime: Box::new(lifetime),
    })
}
