//! `bessmon health`: asks a running daemon's `/healthz`, for container
//! healthchecks that have no curl. Exit 0 when it answers 200.
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use super::{load_config, Failure, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file whose daemon.http_listen to ask (default: $BESSMON_CONFIG,
    /// then /etc/bessmon/bessmon.toml).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Or this address directly (host:port).
    #[arg(long, conflicts_with = "config")]
    pub address: Option<SocketAddr>,
}

/// Where a listener bound to `listen` is reached from the same host.
fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The status code and body of `GET /healthz`.
fn ask(addr: SocketAddr) -> std::io::Result<(u16, String)> {
    let timeout = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: bessmon\r\nConnection: close\r\n\r\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    let code = reply
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default();
    Ok((code, body))
}

pub fn run(a: Args) -> Outcome {
    let addr = match a.address {
        Some(addr) => addr,
        None => reachable(load_config(a.config.as_ref())?.daemon.http_listen),
    };
    match ask(addr) {
        Ok((200, body)) => {
            println!("{body}");
            Ok(())
        }
        Ok((code, body)) => Err(Failure::runtime(format!(
            "http://{addr}/healthz answered {code}: {body}"
        ))),
        Err(e) => Err(Failure::runtime(format!("http://{addr}/healthz: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listener_is_asked_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0:9810".parse().unwrap()),
            "127.0.0.1:9810".parse().unwrap()
        );
        assert_eq!(
            reachable("[::]:9810".parse().unwrap()),
            "[::1]:9810".parse().unwrap()
        );
        assert_eq!(
            reachable("10.0.0.7:9810".parse().unwrap()),
            "10.0.0.7:9810".parse().unwrap()
        );
    }
}
