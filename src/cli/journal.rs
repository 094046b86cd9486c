//! Log records to the systemd journal with their level. Under systemd,
//! stderr goes to journald, which reads a `<N>` syslog priority at the start
//! of each line (SyslogLevelPrefix, on by default); without it every record,
//! errors included, is stored at the unit's default level and
//! `journalctl -p err` finds nothing.
use std::io::Write;

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

/// True when stderr is the stream systemd connected to the journal
/// ($JOURNAL_STREAM names its device and inode).
pub fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat fills `st` for an open descriptor, or fails.
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
}

/// The syslog priority of a tracing level.
pub fn priority(level: &Level) -> &'static [u8] {
    match *level {
        Level::ERROR => b"<3>",
        Level::WARN => b"<4>",
        Level::INFO => b"<6>",
        _ => b"<7>",
    }
}

/// Writes each record to `W` with its priority in front.
pub struct Prefixed<W> {
    inner: W,
    prefix: &'static [u8],
}

impl<W: Write> Write for Prefixed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    /// One record is one write of the formatted line: prefixed in the same
    /// write, so concurrent records never interleave a prefix and a line.
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(self.prefix.len() + buf.len());
        line.extend_from_slice(self.prefix);
        line.extend_from_slice(buf);
        self.inner.write_all(&line)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A `MakeWriter` that prefixes each record with its level's priority.
pub struct JournalWriter<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for JournalWriter<M> {
    type Writer = Prefixed<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Prefixed {
            inner: self.0.make_writer(),
            prefix: b"<6>",
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        Prefixed {
            inner: self.0.make_writer_for(meta),
            prefix: priority(meta.level()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_record_carries_its_priority() {
        let sink = Sink::default();
        let out = sink.0.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(JournalWriter(move || sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!("disk full");
            tracing::warn!("slow");
            tracing::info!("started");
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("<3>") && lines[0].ends_with("disk full"),
            "{text}"
        );
        assert!(lines[1].starts_with("<4>"), "{text}");
        assert!(lines[2].starts_with("<6>"), "{text}");
    }

    #[test]
    fn without_journal_stream_stderr_is_not_the_journal() {
        // The test runner's stderr is no journal stream whatever the variable says.
        if std::env::var_os("JOURNAL_STREAM").is_none() {
            assert!(!stderr_is_journal());
        }
    }
}
