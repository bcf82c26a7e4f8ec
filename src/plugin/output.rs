//! Where plugin mode writes, and who may stop it.
//!
//! Grafana names the file of every render (`filePath`): a new random name in its data
//! directory's `png/`, `csv/` or `pdf/` folder (`pkg/services/rendering`: `ImagesDir`,
//! `CSVsDir`, `PDFsDir`, each `filepath.Join(DataPath, "png" | "csv" | "pdf")`, made absolute).
//! Anyone else who reaches the plugin's loopback port with the token could otherwise make
//! grender write chosen bytes anywhere, so a `filePath` must be an absolute path without `..`,
//! in a directory named `png`, `csv` or `pdf` (or one of plugin.output-dir when set), that
//! directory not a symbolic link, and the file must not exist yet: it is created exclusively
//! (`O_EXCL`) without following a symbolic link (`O_NOFOLLOW`), relative to the directory
//! opened without following one either.
//!
//! go-plugin's `Shutdown` carries no token (its request is `Empty` and go-plugin's host sends
//! no metadata), so it cannot be put behind the token check; instead it is only honoured when
//! the calling socket belongs to this process's own user, as Grafana's (our parent's) does.

use std::ffi::CString;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// The folders of Grafana's data directory that it names render files in.
pub const RENDER_DIR_NAMES: [&str; 3] = ["png", "csv", "pdf"];

/// Checks that Grafana's `filePath` is a new file in a render directory; the error says why not.
pub fn check(file_path: &str, allowed_dirs: &[PathBuf]) -> Result<PathBuf, String> {
    if file_path.is_empty() {
        return Err("filePath is empty".into());
    }
    let path = Path::new(file_path);
    if !path.is_absolute() {
        return Err(format!(
            "filePath {file_path:?} is not an absolute path; Grafana always sends one"
        ));
    }
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(format!("filePath {file_path:?} contains '..' or '.'"));
    }
    let (Some(dir), Some(_)) = (path.parent(), path.file_name()) else {
        return Err(format!("filePath {file_path:?} names no file"));
    };
    if allowed_dirs.is_empty() {
        let dir_name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !RENDER_DIR_NAMES.contains(&dir_name) {
            return Err(format!(
                "filePath {file_path:?} is not in a directory named png, csv or pdf, where Grafana puts renders \
                 (its data directory's png/, csv/, pdf/); set plugin.output-dir (GF_PLUGIN_OUTPUT_DIR) to allow another"
            ));
        }
    } else if !allowed_dirs.iter().any(|d| d == dir) {
        return Err(format!(
            "filePath {file_path:?} is not in one of plugin.output-dir (GF_PLUGIN_OUTPUT_DIR)"
        ));
    }
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "the directory of filePath {file_path:?} is a symbolic link or not a directory"
            ));
        }
        Err(e) => {
            return Err(format!(
                "the directory of filePath {file_path:?} cannot be read: {e}"
            ));
        }
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(path.to_path_buf()),
        Ok(_) => Err(format!(
            "filePath {file_path:?} already exists; grender only writes new files"
        )),
        Err(e) => Err(format!("filePath {file_path:?} cannot be checked: {e}")),
    }
}

/// Writes `bytes` to the new file `path` (checked by [`check`]): the directory is opened
/// without following a symbolic link, the file created in it exclusively without following
/// one, so nothing that appeared there since the check is written through.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name");
    let (dir, name) = (
        path.parent().ok_or_else(invalid)?,
        path.file_name().ok_or_else(invalid)?,
    );
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)?;
    let name = CString::new(name.as_bytes()).map_err(|_| invalid())?;
    let mode: libc::c_uint = 0o644;
    // SAFETY: a valid directory descriptor and a NUL-terminated name; the descriptor returned
    // is owned by the File below.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(bytes)?;
    file.flush()
}

/// The user id owning the TCP socket at `peer` connected to our `local` address, from
/// `/proc/net/tcp{,6}`; None when it is not found.
pub fn peer_uid(local: SocketAddr, peer: SocketAddr) -> Option<u32> {
    let (table, want_local, want_remote) = match (peer, local) {
        (SocketAddr::V4(p), SocketAddr::V4(l)) => ("/proc/net/tcp", hex_v4(p), hex_v4(l)),
        (SocketAddr::V6(p), SocketAddr::V6(l)) => ("/proc/net/tcp6", hex_v6(p), hex_v6(l)),
        _ => return None,
    };
    let text = std::fs::read_to_string(table).ok()?;
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid …
        (fields.len() > 7
            && fields[1].eq_ignore_ascii_case(&want_local)
            && fields[2].eq_ignore_ascii_case(&want_remote))
        .then(|| fields[7].parse().ok())
        .flatten()
    })
}

/// `/proc/net/tcp`'s form of an address: the 32-bit word as the host reads it, then the port.
fn hex_v4(addr: std::net::SocketAddrV4) -> String {
    format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(addr.ip().octets()),
        addr.port()
    )
}

fn hex_v6(addr: std::net::SocketAddrV6) -> String {
    let octets = addr.ip().octets();
    let words: String = octets
        .chunks(4)
        .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    format!("{words}:{:04X}", addr.port())
}

/// This process's effective user id.
pub fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_files_in_render_directories() {
        let root = tempfile::tempdir().unwrap();
        let png = root.path().join("png");
        std::fs::create_dir(&png).unwrap();
        let ok = png.join("a.png");
        assert_eq!(check(&ok.display().to_string(), &[]), Ok(ok.clone()));
        write_new(&ok, b"x").unwrap();
        assert!(
            check(&ok.display().to_string(), &[])
                .unwrap_err()
                .contains("already exists")
        );
        assert!(
            write_new(&ok, b"y").is_err(),
            "an existing file is never truncated"
        );
        assert_eq!(std::fs::read(&ok).unwrap(), b"x");
        let other = root.path().join("other");
        std::fs::create_dir(&other).unwrap();
        for bad in [
            "png/a.png".to_string(),
            format!("{}/../png/b.png", png.display()),
            other.join("c.png").display().to_string(),
            String::new(),
        ] {
            assert!(check(&bad, &[]).is_err(), "{bad}");
        }
        // A symlinked png directory and a symlink at the target are refused, also at write time.
        let linked = root.path().join("link/png");
        std::fs::create_dir(root.path().join("link")).unwrap();
        std::os::unix::fs::symlink(&other, &linked).unwrap();
        assert!(check(&linked.join("d.png").display().to_string(), &[]).is_err());
        assert!(write_new(&linked.join("d.png"), b"x").is_err());
        let victim = other.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, png.join("e.png")).unwrap();
        assert!(check(&png.join("e.png").display().to_string(), &[]).is_err());
        assert!(write_new(&png.join("e.png"), b"x").is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        // With plugin.output-dir, exactly those directories.
        let f = other.join("f.csv");
        assert_eq!(
            check(&f.display().to_string(), std::slice::from_ref(&other)),
            Ok(f)
        );
        assert!(check(&png.join("g.png").display().to_string(), &[other]).is_err());
    }

    #[test]
    fn the_owner_of_a_loopback_peer_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(
            peer_uid(listener.local_addr().unwrap(), peer),
            Some(own_uid())
        );
        let nobody: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(peer_uid(listener.local_addr().unwrap(), nobody), None);
    }
}
