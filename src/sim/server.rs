//! The simulator's Modbus TCP side: one listener per site (site k on port
//! base + k), units 1 PCS, 2 BMS, 3 meter. Read-only: writes are refused with
//! ILLEGAL FUNCTION, as a monitoring-only device would.
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_util::sync::CancellationToken;

use super::faults::Faults;
use super::image::{self, SimValue, UnitImage};
use super::physics::{Site, SiteParams};
use crate::acquire::profile::{Profile, ProfileCatalog, Table};
use crate::clock::SharedClock;

pub const UNIT_PCS: u8 = 1;
pub const UNIT_BMS: u8 = 2;
pub const UNIT_METER: u8 = 3;

#[derive(Debug)]
pub struct SimProfiles {
    pub pcs: Arc<Profile>,
    pub bms: Arc<Profile>,
    pub meter: Arc<Profile>,
    /// A generic register server instead (`simulate --load`): every unit id
    /// answers every address, for load tests of any collector.
    pub generic: bool,
}

impl SimProfiles {
    /// Whether `unit` is served by the simulator's own profile (values by
    /// point name) rather than another map (values by role).
    fn own(&self, unit: u8) -> bool {
        self.of(unit)
            .is_some_and(|p| p.id.starts_with("bessmon-sim-"))
    }

    fn of(&self, unit: u8) -> Option<&Profile> {
        match unit {
            UNIT_PCS => Some(&self.pcs),
            UNIT_BMS => Some(&self.bms),
            UNIT_METER => Some(&self.meter),
            _ => None,
        }
    }

    pub fn bundled() -> Self {
        let load = |id: &str| {
            ProfileCatalog::new(&[])
                .load(id)
                .and_then(Result::ok)
                .unwrap_or_else(|| panic!("bundled profile {id} is valid (checked by tests)"))
        };
        SimProfiles {
            pcs: load("bessmon-sim-pcs"),
            bms: load("bessmon-sim-bms"),
            meter: load("bessmon-sim-meter"),
            generic: false,
        }
    }
}

/// One simulated site: its physics, its faults and its request counter.
#[derive(Debug)]
pub struct SimSite {
    pub index: usize,
    pub site: Mutex<Site>,
    pub faults: Faults,
    pub requests: AtomicU64,
    /// Write requests received (and refused); bessmon itself must never send one.
    pub writes: AtomicU64,
    /// TCP connections accepted so far.
    pub connections: AtomicU64,
    clock: SharedClock,
    profiles: Arc<SimProfiles>,
}

impl SimSite {
    pub fn new(
        index: usize,
        params: SiteParams,
        clock: SharedClock,
        profiles: Arc<SimProfiles>,
    ) -> Self {
        let site = Site::new(params, clock.now());
        SimSite {
            index,
            site: Mutex::new(site),
            faults: Faults::default(),
            requests: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            clock,
            profiles,
        }
    }

    /// The unit's registers as of now.
    pub fn image(&self, unit: u8) -> Option<UnitImage> {
        let mut site = self.site.lock().unwrap_or_else(|e| e.into_inner());
        site.advance(self.clock.now());
        if self.faults.reset_counters.swap(false, Relaxed) {
            site.reset_counters();
        }
        let s = &site.state;
        let p = &site.params;
        let soc = site.soc();
        let dc_v = 700.0 + 100.0 * soc;
        let wrap32 = |wh: f64, per: f64| SimValue::Raw((wh / per) as u64 & 0xFFFF_FFFF);
        match unit {
            _ if !self.profiles.own(unit) => {
                // Any other profile: values by role, encoded as its map says.
                let profile = self.profiles.of(unit)?;
                let mut img = image::build(profile, |pt| {
                    by_role(pt, profile, &site)
                        .or_else(|| super::sunspec::value(pt, &profile.id, &p.serial))
                });
                if profile.sunspec {
                    super::sunspec::frame(profile, &mut img);
                }
                Some(img)
            }
            UNIT_PCS => Some(image::build(&self.profiles.pcs, |pt| {
                Some(match &*pt.name {
                    "status" => SimValue::Num(if s.power_kw < 0.0 {
                        1.0
                    } else if s.power_kw > 0.0 {
                        2.0
                    } else {
                        0.0
                    }),
                    "alarm" => SimValue::Num(0.0),
                    "active_power" => SimValue::Num(s.power_kw),
                    "reactive_power" => SimValue::Num(0.0),
                    "ac_voltage" => SimValue::Num(400.0),
                    "frequency" => SimValue::Num(50.0),
                    "charge_energy_total" => wrap32(s.charge_wh, 1.0),
                    "discharge_energy_total" => wrap32(s.discharge_wh, 1.0),
                    "dc_voltage" => SimValue::Num(dc_v),
                    "dc_current" => SimValue::Num(s.power_kw * 1000.0 / dc_v),
                    "igbt_temp" => SimValue::Num(35.0 + 20.0 * s.power_kw.abs() / p.rated_kw),
                    "rated_power" => SimValue::Num(p.rated_kw),
                    "serial_number" => SimValue::Text(p.serial.clone()),
                    _ => return None,
                })
            })),
            UNIT_BMS => Some(image::build(&self.profiles.bms, |pt| {
                let cell_max = 3.20 + 0.15 * soc + 0.01;
                let temp = 25.0 + 5.0 * s.power_kw.abs() / p.rated_kw;
                Some(match &*pt.name {
                    "soc" => SimValue::Num(soc * 100.0),
                    "soh" => SimValue::Num(98.5),
                    "rack_voltage" => SimValue::Num(dc_v),
                    "rack_current" => SimValue::Num(s.power_kw * 1000.0 / dc_v),
                    "cell_voltage_max" => SimValue::Num(cell_max),
                    "cell_voltage_min" => SimValue::Num(cell_max - 0.02),
                    "cell_temp_max" => SimValue::Num(temp + 2.0),
                    "cell_temp_min" => SimValue::Num(temp - 1.0),
                    "status" => SimValue::Num(1.0),
                    "alarm" => SimValue::Num(0.0),
                    "cycle_count" => {
                        SimValue::Num((s.throughput_kwh / (2.0 * p.capacity_kwh)).floor())
                    }
                    "contactor_closed" => SimValue::Bool(true),
                    _ => return None,
                })
            })),
            UNIT_METER => Some(image::build(&self.profiles.meter, |pt| {
                let grid = s.grid_kw();
                Some(match &*pt.name {
                    "voltage_l1" => SimValue::Num(230.0),
                    "current_l1" => SimValue::Num(grid.abs() * 1000.0 / (3.0 * 230.0)),
                    "grid_power" => SimValue::Num(grid),
                    "power_factor" => SimValue::Num(0.98),
                    "pf_sf" => SimValue::Num(-3.0),
                    "frequency" => SimValue::Num(50.0),
                    "grid_import_energy_total" => wrap32(s.import_wh, 10.0),
                    "grid_export_energy_total" => wrap32(s.export_wh, 10.0),
                    n => match (
                        n.strip_prefix("charge_energy_rate"),
                        n.strip_prefix("discharge_energy_rate"),
                    ) {
                        (Some(r), _) => wrap32(s.rate_charge_wh[rate_index(r)?], 10.0),
                        (_, Some(r)) => wrap32(s.rate_discharge_wh[rate_index(r)?], 10.0),
                        _ => return None,
                    },
                })
            })),
            _ => None,
        }
    }

    /// Answers one request; `Ok(None)` means stay silent.
    fn answer(&self, unit: u8, req: &Request<'_>) -> Result<Option<Response>, ExceptionCode> {
        let (table, addr, count) = match *req {
            Request::ReadHoldingRegisters(a, c) => (Table::Holding, a, c),
            Request::ReadInputRegisters(a, c) => (Table::Input, a, c),
            Request::ReadCoils(a, c) => (Table::Coil, a, c),
            Request::ReadDiscreteInputs(a, c) => (Table::Discrete, a, c),
            _ => {
                self.writes.fetch_add(1, Relaxed);
                return Err(ExceptionCode::IllegalFunction);
            }
        };
        if count == 0 || count > table.protocol_max() {
            return Err(ExceptionCode::IllegalDataValue);
        }
        if self.profiles.generic {
            return generic(table, addr, count, self.clock.now().as_second());
        }
        let img = self.image(unit).ok_or(ExceptionCode::GatewayTargetDevice)?;
        let range = addr as usize..addr as usize + count as usize;
        if table.is_bits() {
            let bits = img
                .bits(table)
                .get(range)
                .ok_or(ExceptionCode::IllegalDataAddress)?
                .to_vec();
            return Ok(Some(if table == Table::Coil {
                Response::ReadCoils(bits)
            } else {
                Response::ReadDiscreteInputs(bits)
            }));
        }
        let mut words = img
            .words(table)
            .get(range)
            .ok_or(ExceptionCode::IllegalDataAddress)?
            .to_vec();
        let every = self.faults.garbage_every.load(Relaxed);
        if every > 0 && self.requests.load(Relaxed) % every as u64 == 0 {
            let i = fastrand::usize(..words.len());
            words[i] = fastrand::u16(..);
        }
        Ok(Some(if table == Table::Input {
            Response::ReadInputRegisters(words)
        } else {
            Response::ReadHoldingRegisters(words)
        }))
    }
}

/// The generic register server's reply: every register a function of its
/// address and the second, so a collector decodes changing values without
/// the simulator building a device image per request.
fn generic(table: Table, addr: u16, count: u16, second: i64) -> Reply {
    if addr as u32 + count as u32 > 65536 {
        return Err(ExceptionCode::IllegalDataAddress);
    }
    let at = |i: u16| {
        (addr as u32 + i as u32)
            .wrapping_mul(31)
            .wrapping_add(second as u32)
    };
    Ok(Some(match table {
        Table::Coil => Response::ReadCoils((0..count).map(|i| at(i) % 2 == 0).collect()),
        Table::Discrete => {
            Response::ReadDiscreteInputs((0..count).map(|i| at(i) % 2 == 0).collect())
        }
        Table::Input => Response::ReadInputRegisters((0..count).map(|i| at(i) as u16).collect()),
        Table::Holding => {
            Response::ReadHoldingRegisters((0..count).map(|i| at(i) as u16).collect())
        }
    }))
}

type Reply = Result<Option<Response>, ExceptionCode>;

struct Service {
    site: Arc<SimSite>,
    kill: Arc<AtomicBool>,
    served: AtomicU64,
}

impl tokio_modbus::server::Service for Service {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Pin<Box<dyn Future<Output = Reply> + Send>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let site = self.site.clone();
        let n = self.served.fetch_add(1, Relaxed) + 1;
        site.requests.fetch_add(1, Relaxed);
        let f = &site.faults;
        let drop_every = f.drop_every.load(Relaxed);
        if drop_every > 0 && n % drop_every as u64 == 0 {
            self.kill.store(true, Relaxed);
            return Box::pin(async { Ok(None) });
        }
        if f.is_silent(req.slave) {
            return Box::pin(async { Ok(None) });
        }
        if let Some(code) = f.exception_for(req.slave) {
            return Box::pin(async move { Err(ExceptionCode::new(code)) });
        }
        let delay = f.delay_for(req.slave);
        let answer = site.answer(req.slave, &req.request);
        match delay {
            None => Box::pin(async move { answer }),
            Some(d) => Box::pin(async move {
                tokio::time::sleep(d).await;
                answer
            }),
        }
    }
}

/// A TCP stream the service can close from its side (the "dropped connection" fault).
#[derive(Debug)]
struct Killable {
    inner: TcpStream,
    kill: Arc<AtomicBool>,
}

impl AsyncRead for Killable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.kill.load(Relaxed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Killable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves `site` on `listener` until `cancel` fires.
pub async fn serve(listener: TcpListener, site: Arc<SimSite>, cancel: CancellationToken) {
    let server = tokio_modbus::server::tcp::Server::new(listener);
    let on_connected = move |stream: TcpStream, _addr: SocketAddr| {
        let site = site.clone();
        async move {
            let _ = stream.set_nodelay(true);
            site.connections.fetch_add(1, Relaxed);
            let kill = Arc::new(AtomicBool::new(false));
            let svc = Service {
                site,
                kill: kill.clone(),
                served: AtomicU64::new(0),
            };
            Ok(Some((
                svc,
                Killable {
                    inner: stream,
                    kill,
                },
            )))
        }
    };
    let on_error = |e: io::Error| tracing::debug!(target: "bessmon::sim", "connection ended: {e}");
    if let Err(e) = server
        .serve_until(&on_connected, on_error, cancel.cancelled_owned())
        .await
    {
        tracing::warn!(target: "bessmon::sim", "listener stopped: {e}");
    }
}

/// "1".."4" to 0..3.
fn rate_index(r: &str) -> Option<usize> {
    r.parse::<usize>()
        .ok()
        .filter(|n| (1..=4).contains(n))
        .map(|n| n - 1)
}

/// A point of any profile by its role: the physics in bessmon's units,
/// turned into the profile's sign, scale and type by the image.
fn by_role(
    p: &crate::acquire::profile::Point,
    profile: &Profile,
    site: &super::physics::Site,
) -> Option<SimValue> {
    use crate::role::{RateFlow, Role, Sign};
    let s = &site.state;
    let rated = site.params.rated_kw;
    let soc = site.soc();
    // A counter with a scale factor counts in units of 10^sf of its scale.
    let per_count = match p.scale_factor {
        Some(j) if profile.sunspec => {
            10f64.powi(super::sunspec::scale_factor(&profile.points[j]) as i32)
        }
        _ => 1.0,
    };
    let kwh = |wh: f64| image::counter(p, wh / 1000.0 / per_count);
    Some(match p.role? {
        Role::BatteryPower => SimValue::Num(match p.sign {
            Sign::DischargePositive => s.power_kw,
            Sign::ChargePositive => -s.power_kw,
        }),
        Role::GridPower => SimValue::Num(s.grid_kw()),
        Role::SiteLoadPower => SimValue::Num(s.load_kw),
        Role::Soc => SimValue::Num(soc * 100.0),
        Role::Soh => SimValue::Num(98.5),
        Role::ChargeEnergyTotal => kwh(s.charge_wh),
        Role::DischargeEnergyTotal => kwh(s.discharge_wh),
        Role::GridImportEnergyTotal => kwh(s.import_wh),
        Role::GridExportEnergyTotal => kwh(s.export_wh),
        Role::AuxEnergyTotal => kwh(0.0),
        Role::CellVoltageMax => SimValue::Num(3.21 + 0.15 * soc),
        Role::CellVoltageMin => SimValue::Num(3.19 + 0.15 * soc),
        Role::CellTempMax => SimValue::Num(27.0 + 5.0 * s.power_kw.abs() / rated),
        Role::CellTempMin => SimValue::Num(24.0 + 5.0 * s.power_kw.abs() / rated),
        Role::Status | Role::Alarm => return None,
        r => match r.meter_rate()? {
            (RateFlow::Charge, i) => kwh(s.rate_charge_wh[i]),
            (RateFlow::Discharge, i) => kwh(s.rate_discharge_wh[i]),
            _ => return None,
        },
    })
}
