//! The BESS simulator: a Modbus TCP server emulating N sites. Used by
//! `simulate`, `demo`, tests and benches; the pipeline never depends on it.
pub mod faults;
pub mod image;
pub mod physics;
pub mod server;
pub mod sunspec;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
pub use physics::SiteParams;
pub use server::{SimProfiles, SimSite, UNIT_BMS, UNIT_METER, UNIT_PCS};

/// A running simulator: site k listens on `addrs[k]`.
pub struct Simulator {
    pub sites: Vec<Arc<SimSite>>,
    pub addrs: Vec<SocketAddr>,
    pub tasks: JoinSet<()>,
}

/// Binds one listener per site, on `base_port + k`, or on ephemeral ports when `base_port` is 0.
pub async fn start(
    ip: IpAddr,
    base_port: u16,
    params: Vec<SiteParams>,
    clock: SharedClock,
    cancel: CancellationToken,
) -> io::Result<Simulator> {
    start_with(ip, base_port, params, clock, cancel, SimProfiles::bundled()).await
}

/// As `start`, with the devices presenting these profiles' register maps.
pub async fn start_with(
    ip: IpAddr,
    base_port: u16,
    params: Vec<SiteParams>,
    clock: SharedClock,
    cancel: CancellationToken,
    profiles: SimProfiles,
) -> io::Result<Simulator> {
    let profiles = Arc::new(profiles);
    let mut sites = Vec::new();
    let mut addrs = Vec::new();
    let mut tasks = JoinSet::new();
    for (k, p) in params.into_iter().enumerate() {
        let port = if base_port == 0 {
            0
        } else {
            base_port
                .checked_add(k as u16)
                .ok_or_else(|| io::Error::other("site ports run past 65535"))?
        };
        let listener = TcpListener::bind((ip, port)).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen on {ip}:{port} for site {k}: {e}"),
            )
        })?;
        addrs.push(listener.local_addr()?);
        let site = Arc::new(SimSite::new(k, p, clock.clone(), profiles.clone()));
        sites.push(site.clone());
        tasks.spawn(server::serve(listener, site, cancel.clone()));
    }
    Ok(Simulator {
        sites,
        addrs,
        tasks,
    })
}
