//! systemd's notification protocol (sd_notify): READY=1 once every device has
//! been polled, WATCHDOG=1 while the daemon's own loops run (not while devices
//! answer: a device polled once a minute, or a site whose devices are all in
//! backoff, is no reason to be killed), STOPPING=1 on the way out. A datagram
//! to $NOTIFY_SOCKET; nothing happens when it is not set.
use std::time::Duration;

pub struct Notifier {
    socket: Option<std::os::unix::net::UnixDatagram>,
    path: String,
    /// Half of systemd's WatchdogSec, when the watchdog is on.
    pub watchdog_every: Option<Duration>,
    ready_sent: bool,
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
        if all_polled && !self.ready_sent {
            self.ready_sent = true;
            self.send("READY=1\nSTATUS=polling");
        }
    }

    /// On the watchdog timer of the accounting loop, when it is healthy.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// An instance with nothing to poll is ready at once.
    pub fn ready_now(&mut self) {
        self.sample(true);
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}
