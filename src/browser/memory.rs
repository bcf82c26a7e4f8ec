//! How much memory a Chromium tree uses, for recycling on a memory budget.

/// Resident memory of every process in process group `pgid` (Chromium's tree), in bytes.
pub fn tree_rss_bytes(pgid: u32) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name: state ppid pgrp ...
        let Some(group) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
        else {
            continue;
        };
        if group.parse::<u32>().ok() != Some(pgid) {
            continue;
        }
        if let Ok(statm) = std::fs::read_to_string(format!("/proc/{pid}/statm"))
            && let Some(resident) = statm
                .split_whitespace()
                .nth(1)
                .and_then(|r| r.parse::<u64>().ok())
        {
            total += resident * page;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_our_own_group() {
        // SAFETY: getpgrp has no preconditions.
        let own = unsafe { libc::getpgrp() } as u32;
        assert!(super::tree_rss_bytes(own) > 0);
        assert_eq!(super::tree_rss_bytes(u32::MAX), 0);
    }
}
