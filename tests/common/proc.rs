//! Reading `/proc`: which processes exist, their parents and groups, their files.

/// One process as `/proc/PID/stat` shows it.
#[derive(Debug, Clone, Copy)]
pub struct Proc {
    pub pid: i32,
    /// R, S, D, Z, …
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
}

impl Proc {
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }
}

/// Every process.
pub fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Some(stat) = read(pid, "stat") else {
            continue;
        };
        // The command may hold spaces and parentheses: fields follow the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 3 {
            out.push(Proc {
                pid,
                state: f[0].chars().next().unwrap_or('?'),
                ppid: f[1].parse().unwrap_or(0),
                pgid: f[2].parse().unwrap_or(0),
            });
        }
    }
    out
}

/// `/proc/PID/FILE` as text.
pub fn read(pid: i32, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()
}

/// Every descendant of `root`.
pub fn descendants(root: i32) -> Vec<i32> {
    let all = processes();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|p| p.ppid == parent).map(|p| p.pid));
        i += 1;
    }
    found.remove(0);
    found
}

/// Live (non-zombie) processes of process group `pgid`.
pub fn alive_in_group(pgid: i32) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|p| p.pgid == pgid && !p.is_zombie())
        .map(|p| p.pid)
        .collect()
}
