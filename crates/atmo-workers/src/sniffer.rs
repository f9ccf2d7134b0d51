//! What this environment can do, and how many workers a bank should get by default.
//!
//! The original package sniffed browser versus Node; this crate is the native engine, so it
//! reports [`Environment::Native`] with the OS and architecture. The browser build (atmo-wasm)
//! reports its own capabilities and uses [`recommend_workers`] with [`Environment::Browser`].

use serde::{Deserialize, Serialize};

/// Where the engine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// A native process (Linux, macOS, Windows, ...).
    Native,
    /// A web browser (workers are Web Workers).
    Browser,
    /// Something else (a WASM runtime outside a browser).
    Unknown,
}

/// What [`EnvironmentSniffer::capabilities`] reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentCapabilities {
    /// Where the engine runs.
    pub environment: Environment,
    /// The operating system (`std::env::consts::OS`: `"linux"`, `"macos"`, `"windows"`, ...).
    pub os: String,
    /// The CPU architecture (`std::env::consts::ARCH`: `"x86_64"`, `"aarch64"`, ...).
    pub arch: String,
    /// Whether workers can run on threads.
    pub threads: bool,
    /// Whether workers can run as child processes.
    pub processes: bool,
    /// Whether Web Workers are available.
    pub web_workers: bool,
    /// Whether durable storage (a file system) is available.
    pub persistence: bool,
    /// Threads that can run in parallel (at least 1).
    pub concurrency: usize,
    /// Workers a bank should get when its configuration does not say.
    pub recommended_worker_count: usize,
}

/// The largest recommended worker count in a native process: beyond this, a bank that wants
/// more should say so explicitly rather than get it by default on a large machine.
pub const MAX_NATIVE_WORKERS: usize = 16;

/// The largest recommended worker count in a browser, as in the original package: each Web
/// Worker is a full JS realm, and tabs share the machine with everything else.
pub const MAX_BROWSER_WORKERS: usize = 4;

/// Workers to recommend for `concurrency` parallel threads: half of them, so that the engine,
/// the async runtime and the rest of the machine keep room, clamped to 1–16 natively and to 1–4
/// in a browser or an unknown environment.
///
/// ```
/// use atmo_workers::sniffer::{Environment, recommend_workers};
/// assert_eq!(recommend_workers(8, Environment::Native), 4);
/// assert_eq!(recommend_workers(8, Environment::Browser), 4);
/// assert_eq!(recommend_workers(64, Environment::Native), 16);
/// assert_eq!(recommend_workers(1, Environment::Native), 1);
/// ```
pub fn recommend_workers(concurrency: usize, environment: Environment) -> usize {
    let cap = match environment {
        Environment::Native => MAX_NATIVE_WORKERS,
        Environment::Browser | Environment::Unknown => MAX_BROWSER_WORKERS,
    };
    (concurrency / 2).clamp(1, cap)
}

/// Reports what this environment can do.
///
/// ```
/// use atmo_workers::sniffer::{Environment, EnvironmentSniffer};
/// let caps = EnvironmentSniffer::capabilities();
/// assert_eq!(caps.environment, Environment::Native);
/// assert!(caps.concurrency >= 1);
/// assert!((1..=16).contains(&caps.recommended_worker_count));
/// assert_eq!(caps.recommended_worker_count, EnvironmentSniffer::recommended_worker_count());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct EnvironmentSniffer;

impl EnvironmentSniffer {
    /// The capabilities of the current process. Cheap: nothing is probed beyond asking the OS
    /// for the available parallelism.
    pub fn capabilities() -> EnvironmentCapabilities {
        let environment = current_environment();
        let native = environment == Environment::Native;
        let concurrency = Self::concurrency();
        EnvironmentCapabilities {
            environment,
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            threads: native || cfg!(target_feature = "atomics"),
            processes: native,
            web_workers: false,
            // Native processes have a file system; probing writability would cost a file
            // creation on every call, and the stores report their own I/O errors anyway.
            persistence: native,
            concurrency,
            recommended_worker_count: recommend_workers(concurrency, environment),
        }
    }

    /// Threads that can run in parallel here (1 when the OS cannot say).
    pub fn concurrency() -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }

    /// Workers a bank should get when its configuration does not say.
    pub fn recommended_worker_count() -> usize {
        recommend_workers(Self::concurrency(), current_environment())
    }
}

fn current_environment() -> Environment {
    // This crate is the native engine; on wasm32 (outside atmo-wasm, which reports the browser
    // itself) we cannot tell where we are.
    if cfg!(target_arch = "wasm32") { Environment::Unknown } else { Environment::Native }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_recommendation_is_half_the_cores_within_1_to_16() {
        let cases = [(0, 1), (1, 1), (2, 1), (3, 1), (4, 2), (8, 4), (16, 8), (32, 16), (64, 16), (256, 16)];
        for (cores, want) in cases {
            assert_eq!(recommend_workers(cores, Environment::Native), want, "{cores} cores");
        }
    }

    #[test]
    fn browser_and_unknown_recommendation_is_capped_at_4() {
        for env in [Environment::Browser, Environment::Unknown] {
            let got: Vec<usize> = [1, 2, 8, 64].iter().map(|&c| recommend_workers(c, env)).collect();
            assert_eq!(got, vec![1, 1, 4, 4], "{env:?}");
        }
    }

    #[test]
    fn native_capabilities() {
        let caps = EnvironmentSniffer::capabilities();
        assert_eq!(caps.environment, Environment::Native);
        assert!(caps.threads && caps.processes && caps.persistence && !caps.web_workers);
        assert_eq!(caps.os, std::env::consts::OS);
        // An independent count of the CPUs this process may run on (affinity and cgroup quota
        // included), not the call the sniffer makes.
        assert_eq!(caps.concurrency, num_cpus::get());
        assert!((1..=caps.concurrency.max(1)).contains(&caps.recommended_worker_count), "{caps:?}");
    }

    /// Set in the child process of [`a_process_pinned_to_one_cpu_reports_one`].
    const CHILD: &str = "ATMO_SNIFFER_TEST_CHILD";

    /// The child's half: prints what the sniffer sees.
    #[test]
    fn report_concurrency_when_child() {
        if std::env::var_os(CHILD).is_some() {
            let caps = EnvironmentSniffer::capabilities();
            println!("concurrency={} recommended={}", caps.concurrency, caps.recommended_worker_count);
        }
    }

    /// Pinned to one CPU (`taskset -c 0`, Linux), the process can run one thread at a time,
    /// and the sniffer says so, whatever the machine has.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_process_pinned_to_one_cpu_reports_one() {
        let Ok(exe) = std::env::current_exe() else { return };
        let out = std::process::Command::new("taskset")
            .args(["-c", "0"])
            .arg(exe)
            .args(["--exact", "sniffer::tests::report_concurrency_when_child", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output();
        // Without taskset there is nothing to pin with.
        let Ok(out) = out else { return };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("concurrency=1 recommended=1"), "{stdout}");
    }

    #[test]
    fn serializes_camel_case() {
        let caps = EnvironmentSniffer::capabilities();
        let json = serde_json::to_value(&caps).unwrap_or_default();
        assert_eq!(json["environment"], "native");
        assert_eq!(json["webWorkers"], false);
        assert!(json["recommendedWorkerCount"].is_u64());
        let back: Result<EnvironmentCapabilities, _> = serde_json::from_value(json);
        assert_eq!(back.ok(), Some(caps));
    }
}
