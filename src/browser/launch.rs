//! Finding Chromium ([`find_chromium`]) and starting one process of it so that it can never
//! outlive grender.
//!
//! We spawn Chromium ourselves (rather than letting the CDP crate do it) to get three
//! things: its own process group, so the whole tree is killed with one `killpg`;
//! `PR_SET_PDEATHSIG`, so the kernel kills it even when grender is SIGKILLed; and its
//! stderr drained into our logs for the whole of its life.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;

pub use crate::config::SandboxMode;

/// How to start Chromium.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// The real Chromium binary (not a shell wrapper that does not `exec`).
    pub path: PathBuf,
    /// User flags from browser.flag, added after ours so they can override.
    pub extra_flags: Vec<String>,
    /// The process's TZ, the default for every render.
    pub timezone: String,
    /// How long Chromium may take to open its DevTools socket.
    pub launch_timeout: Duration,
    /// CA certificates (PEM) Chromium should trust, for a Grafana behind a private CA.
    pub ca_file: Option<PathBuf>,
    /// Whether Chromium keeps its sandbox (browser.sandbox).
    pub sandbox: SandboxMode,
}

/// The Chromium binary to launch: browser.path, else CHROME_BIN, else the first one installed;
/// or why none was found.
pub fn find_chromium(configured: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = configured {
        return which(path.as_os_str().to_string_lossy().as_ref())
            .ok_or_else(|| format!("browser.path '{}' was not found", path.display()));
    }
    if let Some(bin) = std::env::var_os("CHROME_BIN").filter(|b| !b.is_empty()) {
        let bin = bin.to_string_lossy().to_string();
        return which(&bin).ok_or_else(|| format!("CHROME_BIN '{bin}' was not found"));
    }
    // The real binaries first: Debian's /usr/bin wrappers for the shell do not `exec`,
    // so a kill of the wrapper would orphan Chromium.
    const CANDIDATES: [&str; 6] = [
        "/usr/lib/chromium/chromium-headless-shell",
        "chromium-headless-shell",
        "/usr/lib/chromium/chromium",
        "chromium",
        "chromium-browser",
        "google-chrome",
    ];
    CANDIDATES.iter().find_map(|c| which(c)).ok_or_else(|| {
        "no Chromium found: install it (Debian/Ubuntu: apt-get install chromium-headless-shell) \
         or set browser.path / BROWSER_PATH"
            .into()
    })
}

/// Finds an executable by path or on PATH.
fn which(name: &str) -> Option<PathBuf> {
    let is_exe = |p: &Path| p.is_file();
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exe(&p).then_some(p);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| is_exe(p))
}

/// Set once Chromium reported that its sandbox cannot start here, so that relaunches
/// (recycling, crashes) go straight to the unsandboxed start in auto mode.
static SANDBOX_UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// Whether Chromium runs sandboxed in this process right now, for logs and `grender doctor`.
pub fn sandbox_state(mode: SandboxMode) -> &'static str {
    match mode {
        SandboxMode::Off => "off (browser.sandbox=off)",
        _ if running_as_root() => "off (running as root, where Chromium cannot use it)",
        SandboxMode::Auto if SANDBOX_UNAVAILABLE.load(Ordering::Relaxed) => {
            "off (unavailable here: no user namespaces)"
        }
        _ => "on",
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Chromium's message when it needs a sandbox it cannot get.
const NO_SANDBOX_MESSAGE: &str = "No usable sandbox";

/// A fix for the Chromium start-up failures users meet most, from Chromium's own output.
pub fn launch_failure_fix(output: &str) -> Option<String> {
    if output.contains(NO_SANDBOX_MESSAGE) {
        return Some(
            "Fix: Chromium's sandbox needs user namespaces, which this machine or container forbids \
             (Docker's default seccomp profile, Ubuntu's AppArmor restriction, user.max_user_namespaces=0). \
             Allow them, or set browser.sandbox=auto (falls back with a warning) or off"
                .into(),
        );
    }
    if output.contains("Running as root without --no-sandbox") {
        return Some(
            "Fix: Chromium's sandbox cannot run as root; run grender as a non-root user, or set browser.sandbox=auto"
                .into(),
        );
    }
    if let Some(rest) = output
        .split("error while loading shared libraries: ")
        .nth(1)
    {
        let lib = rest.split(':').next().unwrap_or(rest).trim();
        return Some(format!(
            "Fix: the system library {lib} is missing; install Chromium with its libraries \
             (Debian/Ubuntu: apt-get install chromium-headless-shell, or chromium)"
        ));
    }
    None
}

/// A running Chromium tree. Dropping it kills the tree and reaps the main process.
pub struct ChromiumProcess {
    child: Child,
    reaped: bool,
    _profile: tempfile::TempDir,
}

impl ChromiumProcess {
    /// The browser process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills every process of the tree and reaps the main one; safe to call twice.
    pub fn kill_tree(&mut self) {
        if self.reaped {
            // The pid may already belong to someone else.
            return;
        }
        self.reaped = true;
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: killpg only sends a signal; the group is the one we created at spawn.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChromiumProcess {
    fn drop(&mut self) {
        self.kill_tree();
    }
}

/// Flags every render depends on. The network ones keep Chromium from calling home,
/// which on a closed network floods it with failing connections.
fn base_flags(profile: &std::path::Path) -> Vec<String> {
    let mut flags: Vec<String> = [
        "--headless",
        "--remote-debugging-port=0",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-renderer-backgrounding",
        "--disable-background-timer-throttling",
        "--disable-backgrounding-occluded-windows",
        "--disable-ipc-flooding-protection",
        "--disable-hang-monitor",
        "--disable-breakpad",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-component-extensions-with-background-pages",
        "--disable-prompt-on-repost",
        "--metrics-recording-only",
        "--password-store=basic",
        "--use-mock-keychain",
        "--disable-features=Translate,MediaRouter,OptimizationHints",
        // Two processes fewer, measured one flag at a time on the Grafana-frontend test app
        // (docs/adr/0012): the GPU thread (software compositing only, the GPU is disabled) and
        // the network service run inside the browser process. Each context keeps its own
        // network context (cookie jar, HTTP cache), so renders stay as separate as before.
        "--in-process-gpu",
        "--enable-features=NetworkServiceInProcess2",
        "--hide-scrollbars",
        "--mute-audio",
        "--force-color-profile=srgb",
        "--font-render-hinting=none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Pop-ups and `target=_blank` links of a render would outlive it in its warm
    // context and see the next render's cookies: headless refuses to open them.
    flags.push("--block-new-web-contents".into());
    flags.push(format!("--user-data-dir={}", profile.display()));
    flags
}

/// Environment variables Chromium is started with (all others are cleared): where its home,
/// temporary and XDG directories are, locale, fonts, CA certificates, NSS settings, library
/// path and proxies. TZ is set from browser.timezone.
const CHROMIUM_ENV: &[&str] = &[
    "HOME",
    "PATH",
    "TMPDIR",
    "LANG",
    "LANGUAGE",
    "LD_LIBRARY_PATH",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];

/// Prefixes of further variables Chromium may read: `LC_*` (locale), `XDG_*` (runtime, config,
/// cache and data directories), `FONTCONFIG_*`, `SSL_CERT_*` and `NSS_*`.
const CHROMIUM_ENV_PREFIXES: &[&str] = &["LC_", "XDG_", "FONTCONFIG_", "SSL_CERT_", "NSS_"];

/// Whether the variable `name` of grender's environment is passed on to Chromium.
fn passed_to_chromium(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    CHROMIUM_ENV.contains(&name) || CHROMIUM_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Starts Chromium and returns it with its DevTools websocket URL. As a non-root user the
/// sandbox is kept; in auto mode a sandbox that cannot start is dropped with a warning.
pub async fn launch(opts: &LaunchOptions) -> Result<(ChromiumProcess, String), String> {
    let unsandboxed = match opts.sandbox {
        SandboxMode::Off => true,
        SandboxMode::On => false,
        SandboxMode::Auto => running_as_root() || SANDBOX_UNAVAILABLE.load(Ordering::Relaxed),
    };
    let result = launch_once(opts, unsandboxed).await;
    match result {
        Err(msg) if !unsandboxed && msg.contains(NO_SANDBOX_MESSAGE) => {
            if opts.sandbox == SandboxMode::Auto {
                SANDBOX_UNAVAILABLE.store(true, Ordering::Relaxed);
                tracing::warn!(
                    "Chromium's sandbox cannot start here (no user namespaces), so pages render without it. \
                     To keep it, allow user namespaces for this container; browser.sandbox=off silences this warning"
                );
                launch_once(opts, true).await
            } else {
                Err(with_fix(msg))
            }
        }
        Err(msg) => Err(with_fix(msg)),
        ok => ok,
    }
}

fn with_fix(msg: String) -> String {
    match launch_failure_fix(&msg) {
        Some(fix) => format!("{msg}. {fix}"),
        None => msg,
    }
}

async fn launch_once(
    opts: &LaunchOptions,
    unsandboxed: bool,
) -> Result<(ChromiumProcess, String), String> {
    let profile = tempfile::Builder::new()
        .prefix("grender-chromium-")
        .tempdir()
        .map_err(|e| format!("cannot create a profile directory: {e}"))?;
    let mut cmd = Command::new(&opts.path);
    // Chromium (and every page's renderer) gets only what it needs from our environment:
    // never AUTH_TOKEN, GF_PLUGIN_AUTH_TOKEN, a Grafana token or any other secret of ours.
    cmd.env_clear()
        .envs(std::env::vars_os().filter(|(name, _)| passed_to_chromium(name)));
    if let Some(ca) = &opts.ca_file {
        // Chromium on Linux trusts the NSS database under $HOME/.pki/nssdb: give this
        // Chromium a home of its own inside its profile, holding the CA.
        let home = profile.path().join("home");
        trust_ca(&home, ca)?;
        cmd.env("HOME", &home);
    }
    cmd.args(base_flags(profile.path()));
    if unsandboxed {
        cmd.arg("--no-sandbox");
    }
    cmd.args(&opts.extra_flags)
        .arg("about:blank")
        .env("TZ", &opts.timezone)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", opts.path.display()))?;
    let stderr = child.stderr.take();
    let mut process = ChromiumProcess {
        child,
        reaped: false,
        _profile: profile,
    };

    let (tx, rx) = oneshot::channel::<Result<String, String>>();
    let Some(stderr) = stderr else {
        return Err("Chromium's stderr was not captured".into());
    };
    let pid = process.pid();
    std::thread::Builder::new()
        .name(format!("chromium-{pid}-stderr"))
        .spawn(move || drain_stderr(stderr, tx))
        .map_err(|e| format!("cannot start the stderr reader: {e}"))?;

    match tokio::time::timeout(opts.launch_timeout, rx).await {
        Ok(Ok(Ok(ws))) => Ok((process, ws)),
        Ok(Ok(Err(msg))) => {
            process.kill_tree();
            Err(msg)
        }
        Ok(Err(_)) => {
            process.kill_tree();
            Err("Chromium exited before opening its DevTools socket".into())
        }
        Err(_) => {
            process.kill_tree();
            Err(format!(
                "Chromium did not open its DevTools socket within {:?}",
                opts.launch_timeout
            ))
        }
    }
}

/// Creates an NSS database under `home` that trusts every certificate in `ca_pem`.
fn trust_ca(home: &Path, ca_pem: &Path) -> Result<(), String> {
    let db_dir = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db_dir)
        .map_err(|e| format!("cannot create {}: {e}", db_dir.display()))?;
    let db = format!("sql:{}", db_dir.display());
    let certutil =
        |args: &[&str]| -> Result<(), String> {
            let out = Command::new("certutil").arg("-d").arg(&db).args(args).output().map_err(|e| {
            format!("browser.ca-file needs certutil (Debian: apt-get install libnss3-tools): {e}")
        })?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "certutil {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
    certutil(&["-N", "--empty-password"])?;
    let pem = std::fs::read_to_string(ca_pem)
        .map_err(|e| format!("cannot read browser.ca-file {}: {e}", ca_pem.display()))?;
    let blocks: Vec<&str> = pem
        .split("-----END CERTIFICATE-----")
        .filter_map(|b| b.find("-----BEGIN CERTIFICATE-----").map(|i| &b[i..]))
        .collect();
    if blocks.is_empty() {
        return Err(format!(
            "browser.ca-file {} holds no PEM certificate",
            ca_pem.display()
        ));
    }
    for (i, block) in blocks.iter().enumerate() {
        let one = home.join(format!("ca-{i}.pem"));
        std::fs::write(&one, format!("{block}-----END CERTIFICATE-----\n"))
            .map_err(|e| e.to_string())?;
        certutil(&[
            "-A",
            "-t",
            "C,,",
            "-n",
            &format!("grender-ca-{i}"),
            "-i",
            &one.to_string_lossy(),
        ])?;
    }
    Ok(())
}

/// Reads Chromium's stderr for its whole life: first the websocket URL, then log lines.
fn drain_stderr(stderr: std::process::ChildStderr, tx: oneshot::Sender<Result<String, String>>) {
    let mut tx = Some(tx);
    let mut tail: Vec<String> = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if let Some(ws) = line.strip_prefix("DevTools listening on ") {
            if let Some(tx) = tx.take() {
                let _ = tx.send(Ok(ws.trim().to_string()));
            }
            continue;
        }
        tracing::debug!(target: "chromium", "{line}");
        if tx.is_some() {
            tail.push(line);
            if tail.len() > 5 {
                tail.remove(0);
            }
        }
    }
    if let Some(tx) = tx.take() {
        let detail = if tail.is_empty() {
            "no output".to_string()
        } else {
            tail.join(" | ")
        };
        let _ = tx.send(Err(format!(
            "Chromium exited before it was ready: {detail}"
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_up_failures_come_with_their_fix() {
        let sandbox = "Chromium exited before it was ready: [1124/225447.350466:ERROR:content/browser/zygote_host/\
                       zygote_host_impl_linux.cc:130] No usable sandbox! If this is a Debian system, please install";
        assert!(launch_failure_fix(sandbox).is_some_and(|f| f.contains("browser.sandbox")));
        let root = "[ERROR:zygote_host_impl_linux.cc(100)] Running as root without --no-sandbox is not supported.";
        assert!(launch_failure_fix(root).is_some_and(|f| f.contains("non-root")));
        let libs = "/usr/lib/chromium/chromium: error while loading shared libraries: libnss3.so: cannot open \
                    shared object file: No such file or directory";
        let fix = launch_failure_fix(libs).unwrap_or_default();
        assert!(
            fix.contains("libnss3.so") && fix.contains("apt-get install"),
            "{fix}"
        );
        assert_eq!(
            launch_failure_fix("Chromium exited before it was ready: no output"),
            None
        );
    }

    #[test]
    fn chromium_gets_no_secrets_from_the_environment() {
        let passed = |n: &str| passed_to_chromium(std::ffi::OsStr::new(n));
        for name in [
            "HOME",
            "PATH",
            "LANG",
            "LC_ALL",
            "XDG_RUNTIME_DIR",
            "FONTCONFIG_FILE",
            "TMPDIR",
        ] {
            assert!(passed(name), "{name}");
        }
        for name in [
            "AUTH_TOKEN",
            "GF_PLUGIN_AUTH_TOKEN",
            "GF_RENDERING_RENDERER_TOKEN",
            "SA_TOKEN",
            "BROWSER_FLAG",
        ] {
            assert!(!passed(name), "{name}");
        }
    }

    #[test]
    fn sandbox_modes_parse() {
        use clap::ValueEnum;
        assert_eq!(SandboxMode::from_str("auto", false), Ok(SandboxMode::Auto));
        assert_eq!(SandboxMode::from_str("true", false), Ok(SandboxMode::On));
        assert_eq!(SandboxMode::from_str("off", false), Ok(SandboxMode::Off));
        assert!(SandboxMode::from_str("maybe", false).is_err());
    }
}
