//! systemd's notification protocol (sd_notify): READY=1 once every device has
//! been polled, WATCHDOG=1 while samples keep arriving, STOPPING=1 on the way
//! out. A datagram to $NOTIFY_SOCKET; nothing happens when it is not set.
use std::time::{Duration, Instant};

pub struct Notifier {
    socket: Option<std::os::unix::net::UnixDatagram>,
    path: String,
    /// Half of systemd's WatchdogSec, when the watchdog is on.
    pub watchdog_every: Option<Duration>,
    ready_sent: bool,
    last_sample: Option<Instant>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let path = std::env::var("NOTIFY_SOCKET").unwrap_or_default();
        let socket = (!path.is_empty())
            .then(|| std::os::unix::net::UnixDatagram::unbound().ok())
            .flatten();
        let watchdog_every = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(|us| Duration::from_micros(us / 2));
        Notifier {
            socket,
            path,
            watchdog_every,
            ready_sent: false,
            last_sample: None,
        }
    }

    fn send(&self, msg: &str) {
        let Some(s) = &self.socket else { return };
        let result = if let Some(name) = self.path.strip_prefix('@') {
            // An abstract socket name.
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|a| s.send_to_addr(msg.as_bytes(), &a))
        } else {
            s.send_to(msg.as_bytes(), &self.path)
        };
        if let Err(e) = result {
            tracing::debug!("sd_notify {msg}: {e}");
        }
    }

    pub fn sample(&mut self, all_polled: bool) {
        self.last_sample = Some(Instant::now());
        if all_polled && !self.ready_sent {
            self.ready_sent = true;
            self.send("READY=1\nSTATUS=polling");
        }
    }

    /// On the watchdog timer: alive only if polling is (a sample in the last two periods).
    pub fn watchdog(&self) {
        let (Some(every), Some(last)) = (self.watchdog_every, self.last_sample) else {
            return;
        };
        if last.elapsed() <= every * 2 {
            self.send("WATCHDOG=1");
        }
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}
