//! Records the server rejected as bad data, kept as files with the server's
//! message, so one bad record never blocks the rest and nothing vanishes
//! unseen; the folder is bounded so it can never fill the ledger's volume.
use std::path::Path;

/// Writes `body` (spool records from `first_seq` on) with a header naming
/// `url` and `msg`; returns where it went.
pub fn write(dir: &Path, url: &str, body: &[u8], msg: &str, first_seq: u64) -> String {
    // The sequence number keeps two rejections in one millisecond apart.
    let path = dir.join(format!(
        "{}-{first_seq}.lp",
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

/// Removes the oldest files until the folder holds at most `max_bytes`
/// (the newest file always stays); returns how many were removed.
pub fn prune(dir: &Path, max_bytes: u64) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut files: Vec<(String, u64)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let len = e.metadata().ok()?.len();
            name.ends_with(".lp").then_some((name, len))
        })
        .collect();
    // Names start with a UTC stamp: sorted by name is sorted by age.
    files.sort();
    let mut total: u64 = files.iter().map(|(_, n)| n).sum();
    let mut removed = 0;
    for (name, len) in &files[..files.len().saturating_sub(1)] {
        if total <= max_bytes {
            break;
        }
        if std::fs::remove_file(dir.join(name)).is_ok() {
            total -= len;
            removed += 1;
        }
    }
    removed
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
            7,
        );
        assert!(at.ends_with("-7.lp"), "{at}");
        let text = std::fs::read_to_string(&at).unwrap();
        assert!(text.starts_with(
            "# rejected by http://db/api/v2/write\n# field type conflict: online is bool\n"
        ));
        assert!(text.ends_with(std::str::from_utf8(body).unwrap()));
        // A folder that cannot be made says so instead of failing silently.
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, "").unwrap();
        let nowhere = write(&blocked.join("sub"), "u", body, "m", 1);
        assert!(nowhere.starts_with("nowhere ("), "{nowhere}");
    }

    #[test]
    fn the_folder_is_bounded_oldest_first_and_the_newest_stays() {
        let dir = tempfile::tempdir().unwrap();
        for (name, size) in [
            ("20260101T000000.000Z-1.lp", 400),
            ("20260102T000000.000Z-2.lp", 400),
            ("20260103T000000.000Z-3.lp", 400),
        ] {
            std::fs::write(dir.path().join(name), vec![b'x'; size]).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "not ours").unwrap();
        assert_eq!(prune(dir.path(), 900), 1);
        let left = |d: &Path| {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            left(dir.path()),
            [
                "20260102T000000.000Z-2.lp",
                "20260103T000000.000Z-3.lp",
                "notes.txt"
            ]
        );
        assert_eq!(prune(dir.path(), 10), 1, "the newest stays, however large");
        assert_eq!(left(dir.path()), ["20260103T000000.000Z-3.lp", "notes.txt"]);
        assert_eq!(prune(&dir.path().join("absent"), 10), 0);
    }
}
