//! Opening Modbus connections (TCP, RTU on a serial port, RTU framed over TCP)
//! and sending one read with a deadline.
//!
//! bessmon only reads: this module exposes no way to send a write function code.
use std::io;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_modbus::client::{rtu, tcp, Context, Reader};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ExceptionCode, Slave};

use super::decode::Reply;
use super::planner::Request;
use super::profile::Table;
use crate::acquire::spec::{Parity, Transport};

pub async fn connect(t: &Transport, timeout: Duration) -> io::Result<Context> {
    let fut = async {
        match t {
            Transport::Tcp { host, port, .. } => {
                let s = TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                Ok(tcp::attach_slave(s, Slave(1)))
            }
            Transport::RtuOverTcp { host, port, .. } => {
                let s = TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                Ok(rtu::attach_slave(s, Slave(1)))
            }
            Transport::Rtu {
                path,
                baud,
                parity,
                stop_bits,
                data_bits,
                ..
            } => {
                use tokio_serial::SerialPortBuilderExt;
                let parity = match parity {
                    Parity::Even => tokio_serial::Parity::Even,
                    Parity::Odd => tokio_serial::Parity::Odd,
                    Parity::None => tokio_serial::Parity::None,
                };
                let stop = if *stop_bits == 2 {
                    tokio_serial::StopBits::Two
                } else {
                    tokio_serial::StopBits::One
                };
                let data = match data_bits {
                    5 => tokio_serial::DataBits::Five,
                    6 => tokio_serial::DataBits::Six,
                    7 => tokio_serial::DataBits::Seven,
                    _ => tokio_serial::DataBits::Eight,
                };
                let port = tokio_serial::new(path, *baud)
                    .parity(parity)
                    .stop_bits(stop)
                    .data_bits(data)
                    .open_native_async()
                    .map_err(|e| io::Error::other(format!("{path}: {e}")))?;
                Ok(rtu::attach_slave(port, Slave(1)))
            }
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connect timed out after {timeout:?}"),
        )),
    }
}

#[derive(Debug)]
pub enum CallError {
    /// No reply in time: the connection must be dropped, or the late reply would be
    /// taken for the answer to the next request.
    Timeout,
    Exception(ExceptionCode),
    /// I/O failure or a reply that does not belong to the request (header or
    /// function mismatch): also drops the connection.
    Transport(String),
}

impl CallError {
    pub fn drops_connection(&self) -> bool {
        !matches!(self, CallError::Exception(_))
    }
}

pub fn exception_text(code: ExceptionCode) -> String {
    let n: u8 = code.into();
    format!("exception {n:#04x} {code:?}")
}

/// Sends one planned read to `unit` and waits at most `timeout` for its reply.
pub async fn read(
    ctx: &mut Context,
    unit: u8,
    req: &Request,
    timeout: Duration,
) -> Result<Reply, CallError> {
    ctx.set_slave(Slave(unit));
    let fut = async {
        let (s, c) = (req.start, req.count);
        match req.table {
            Table::Holding => ctx
                .read_holding_registers(s, c)
                .await
                .map(|r| r.map(Reply::Words)),
            Table::Input => ctx
                .read_input_registers(s, c)
                .await
                .map(|r| r.map(Reply::Words)),
            Table::Coil => ctx.read_coils(s, c).await.map(|r| r.map(Reply::Bits)),
            Table::Discrete => ctx
                .read_discrete_inputs(s, c)
                .await
                .map(|r| r.map(Reply::Bits)),
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(CallError::Timeout),
        Ok(Err(e)) => Err(CallError::Transport(e.to_string())),
        Ok(Ok(Err(code))) => Err(CallError::Exception(code)),
        Ok(Ok(Ok(reply))) => {
            let got = match &reply {
                Reply::Words(w) => w.len(),
                Reply::Bits(b) => b.len(),
            };
            if got < req.count as usize {
                return Err(CallError::Transport(format!(
                    "short reply: {got} of {} items",
                    req.count
                )));
            }
            Ok(reply)
        }
    }
}
