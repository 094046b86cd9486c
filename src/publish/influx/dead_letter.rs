//! Batches the server rejected as bad data, kept as files with the server's
//! message, so one bad batch never blocks the rest and nothing vanishes unseen.
use std::path::Path;

/// Writes `body` with a header naming `url` and `msg`; returns where it went.
pub fn write(dir: &Path, url: &str, body: &[u8], msg: &str) -> String {
    let path = dir.join(format!(
        "{}.lp",
        crate::timefmt::file_stamp(jiff::Timestamp::now())
    ));
    let mut content = format!("# rejected by {url}\n# {}\n", msg.replace('\n', " ")).into_bytes();
    content.extend_from_slice(body);
    let written = std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&path, content));
    match written {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("nowhere ({}: {e}; the batch is lost)", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_batch_keeps_the_servers_word_and_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let body = b"bess_status,site=a online=true 1\nbess_status,site=a online=1i 2\n";
        let at = write(
            dir.path(),
            "http://db/api/v2/write",
            body,
            "field type conflict:\nonline is bool",
        );
        let text = std::fs::read_to_string(&at).unwrap();
        assert!(text.starts_with(
            "# rejected by http://db/api/v2/write\n# field type conflict: online is bool\n"
        ));
        assert!(text.ends_with(std::str::from_utf8(body).unwrap()));
        // A folder that cannot be made says so instead of failing silently.
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, "").unwrap();
        let nowhere = write(&blocked.join("sub"), "u", body, "m");
        assert!(nowhere.starts_with("nowhere ("), "{nowhere}");
    }
}
