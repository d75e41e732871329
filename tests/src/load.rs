//! Parts of the load harness (`lading-load`): a durable PostgreSQL cluster, a registry process
//! on it, pre-signed transition streams, latency statistics and CPU accounting.
//!
//! # What is measured, and what is not
//!
//! - The registry runs as a separate `lading serve` process on a private PostgreSQL cluster with
//!   the durable defaults of `lading_pgcluster` (`fsync=on`, `synchronous_commit=on`), unlike
//!   the test cluster, which trades durability for speed.
//! - Every transition is signed before the clock starts: signing is the client's cost.
//! - Transitions are cut into *shards*, one per connection. Each shard holds whole documents
//!   (a generator of its own, with its own reference prefix), so a connection that sends its
//!   shard in order, waiting for each answer, never sends a transition before its parent has
//!   been acknowledged. No transition is refused for arriving early.
//! - A latency is the time from sending a request to having read the whole answer.
//! - Percentiles are nearest-rank: the `q`-quantile of `n` sorted samples is sample
//!   `ceil(q·n) − 1` (the smallest sample with at least `q·n` samples at or below it).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use lading_pgcluster::{Cluster, ClusterOptions};

use crate::gen::{fixtures_dir, FixtureParties, GeneratorConfig, LedgerGenerator};

/// A private PostgreSQL cluster with durable settings in a temporary directory of its own
/// (removed when dropped).
#[derive(Debug)]
pub struct DurableCluster {
    cluster: Option<Cluster>,
    dir: tempfile::TempDir,
    /// Extra server settings, given again at every (re)start.
    settings: Vec<(String, String)>,
}

impl DurableCluster {
    /// Initialises and starts a cluster under `/tmp` (searchable by the `postgres` account, which
    /// runs the server when we are root).
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// [`DurableCluster::start`] with extra server settings (`name`, `value`).
    pub fn start_with(settings: &[(&str, &str)]) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lading-load-pg-")
            .permissions(std::fs::Permissions::from_mode(0o711))
            .tempdir_in("/tmp")?;
        let settings: Vec<(String, String)> = settings
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let cluster = Cluster::start(options(dir.path(), &settings))
            .with_context(|| format!("starting PostgreSQL in {}", dir.path().display()))?;
        Ok(Self {
            cluster: Some(cluster),
            dir,
            settings,
        })
    }

    pub fn cluster(&self) -> Result<&Cluster> {
        self.cluster.as_ref().context("the cluster is not running")
    }

    /// Stops the server the hard way (SIGQUIT: no shutdown checkpoint, as after a crash) and
    /// starts it again, so crash recovery replays the WAL: what survives is what was durable.
    pub fn crash_and_recover(&mut self) -> Result<()> {
        self.crash();
        self.recover()
    }

    /// The first half of [`Self::crash_and_recover`]: the server is gone (immediate shutdown)
    /// until [`Self::recover`], so its clients see it die mid-transaction.
    pub fn crash(&mut self) {
        if let Some(mut cluster) = self.cluster.take() {
            cluster.kill_immediately();
        }
    }

    /// Starts the server again on the same directory (crash recovery replays the WAL); a
    /// running server is left as it is.
    pub fn recover(&mut self) -> Result<()> {
        if self.cluster.is_none() {
            let cluster = Cluster::start(options(self.dir.path(), &self.settings))
                .context("restarting PostgreSQL after an immediate shutdown")?;
            self.cluster = Some(cluster);
        }
        Ok(())
    }

    /// A clean stop; the directory goes with `self`.
    pub fn stop(mut self) -> Result<()> {
        if let Some(cluster) = self.cluster.take() {
            cluster.stop()?;
        }
        Ok(())
    }
}

/// A synchronous standby of a [`DurableCluster`]'s server in a temporary directory of its own,
/// on the same machine: every commit on the primary waits until it has flushed the WAL.
#[derive(Debug)]
pub struct SyncStandby {
    cluster: Option<Cluster>,
    _dir: tempfile::TempDir,
}

impl SyncStandby {
    pub fn start(primary: &Cluster) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lading-load-standby-")
            .permissions(std::fs::Permissions::from_mode(0o711))
            .tempdir_in("/tmp")?;
        let cluster = primary
            .start_standby(ClusterOptions::new(dir.path()), "load_standby")
            .context("starting the synchronous standby")?;
        primary.require_synchronous_standby()?;
        primary.wait_for_synchronous_standby(std::time::Duration::from_secs(60))?;
        Ok(Self {
            cluster: Some(cluster),
            _dir: dir,
        })
    }
}

impl Drop for SyncStandby {
    fn drop(&mut self) {
        if let Some(cluster) = self.cluster.take() {
            let _ = cluster.stop();
        }
    }
}

/// The options of a cluster in `dir` with the durable defaults and `settings` on top.
fn options(dir: &std::path::Path, settings: &[(String, String)]) -> ClusterOptions {
    settings
        .iter()
        .fold(ClusterOptions::new(dir), |o, (name, value)| {
            o.setting(name.clone(), value.clone())
        })
}

/// How to run one `lading serve` process.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    pub bin: PathBuf,
    pub database_url: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// HTTP worker threads of the registry.
    pub workers: usize,
    pub checkpoint_interval_ms: u64,
    /// `RUST_LOG` of the registry; `lading::http=info` logs every write with its time,
    /// `lading::http=debug` every request.
    pub log_filter: String,
    /// Where the registry's stderr (its log) goes.
    pub log_path: PathBuf,
    /// The consortium CA whose client certificates name replicas (`LADING_CLIENT_CA`).
    pub client_ca: Option<PathBuf>,
    /// Further `LADING_*` settings (the replicas to reconcile).
    pub env: Vec<(String, String)>,
}

impl RegistrySettings {
    fn env(&self, port: u16) -> Vec<(String, String)> {
        let fixtures = fixtures_dir();
        vec![
            ("LADING_CONFIG".into(), "/dev/null".into()),
            ("LADING_DATABASE_URL".into(), self.database_url.clone()),
            ("LADING_BIND".into(), format!("127.0.0.1:{port}")),
            ("LADING_TLS_CERT".into(), self.cert.display().to_string()),
            ("LADING_TLS_KEY".into(), self.key.display().to_string()),
            (
                "LADING_SIGNING_KEY".into(),
                fixtures.join("keys/registry.jwk").display().to_string(),
            ),
            // A benchmark deployment: the fixtures' TEST keys sign the load.
            ("LADING_ALLOW_TEST_KEYS".into(), "true".into()),
            (
                "LADING_CHECKPOINT_INTERVAL_MS".into(),
                self.checkpoint_interval_ms.to_string(),
            ),
            ("LADING_WORKERS".into(), self.workers.to_string()),
            // The load is signed by every party of the fixtures and posted by one client
            // without a credential: the write path is measured, not credentials.
            ("LADING_REQUIRE_WRITE_CREDENTIAL".into(), "false".into()),
            ("RUST_LOG".into(), self.log_filter.clone()),
            // The generated load is dated like the fixtures, not now.
            (
                "LADING_MAX_CLOCK_SKEW_MS".into(),
                crate::harness::FIXTURE_CLOCK_SKEW_MS.to_string(),
            ),
        ]
        .into_iter()
        .chain(
            self.client_ca
                .iter()
                .map(|ca| ("LADING_CLIENT_CA".into(), ca.display().to_string())),
        )
        .chain(self.env.iter().cloned())
        .collect()
    }
}

/// A `lading serve` child process. Killed when dropped.
#[derive(Debug)]
pub struct RegistryProcess {
    child: Option<Child>,
    pub base: String,
    pub port: u16,
}

impl RegistryProcess {
    /// Imports the fixture parties and tokens into the database, then starts the registry and
    /// waits (up to 60 s) until it listens.
    pub fn start(settings: &RegistrySettings) -> Result<Self> {
        let port = crate::harness::free_port()?;
        let env = settings.env(port);
        let fixtures = fixtures_dir();
        let import = Command::new(&settings.bin)
            .arg("import-parties")
            .arg(fixtures.join("parties.json"))
            .arg("--tokens")
            .arg(fixtures.join("tokens.json"))
            .envs(env.iter().cloned())
            .output()
            .with_context(|| format!("running {}", settings.bin.display()))?;
        if !import.status.success() {
            bail!(
                "import-parties failed: {}",
                String::from_utf8_lossy(&import.stderr)
            );
        }
        let mut process = Self {
            child: None,
            base: format!("https://127.0.0.1:{port}"),
            port,
        };
        process.respawn(settings)?;
        Ok(process)
    }

    /// Starts `lading serve` (again, after [`Self::kill_9`]) on the same port and database,
    /// without importing the parties again, and waits (up to 60 s) until it listens.
    pub fn respawn(&mut self, settings: &RegistrySettings) -> Result<()> {
        if self.child.is_some() {
            bail!("the registry is still running");
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(&settings.log_path)
            .with_context(|| format!("opening {}", settings.log_path.display()))?;
        let mut command = Command::new(&settings.bin);
        command
            .arg("serve")
            .envs(settings.env(self.port))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        crate::harness::hand_over(&mut command)?;
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", settings.bin.display()))?;
        if let Err(e) = crate::harness::wait_until_listening(&mut child, Duration::from_secs(60)) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e.context(format!(
                "lading serve (see {})",
                settings.log_path.display()
            )));
        }
        self.child = Some(child);
        Ok(())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL and wait.
    pub fn kill_9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM and wait (the registry signs a last checkpoint).
    pub fn stop(&mut self) -> Result<ExitStatus> {
        let mut child = self.child.take().context("not running")?;
        crate::harness::signal(&child, "TERM");
        Ok(child.wait()?)
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Splits `total` into `parts` near-equal counts (the first ones get the remainder).
pub fn split_evenly(total: usize, parts: usize) -> Vec<usize> {
    let parts = parts.max(1);
    (0..parts)
        .map(|i| total / parts + usize::from(i < total % parts))
        .collect()
}

/// Signed transition streams, one per entry of `counts`: shard `i` holds `counts[i]`
/// transitions of its own documents (reference prefix `L` and `i` in base 10, generator seed
/// `seed + i`), each document an ISSUE followed by up to `transfers` transitions. Every shard,
/// sent in order, is valid on its own and alongside the others. Built on `threads` threads.
pub fn generate_shards(
    counts: &[usize],
    transfers: u32,
    seed: u64,
    threads: usize,
) -> Result<Vec<Vec<String>>> {
    generate_shards_naming(counts, transfers, seed, threads, None)
}

/// [`generate_shards`], each shard naming `notify.0` as a notify party on one document in
/// `notify.1` ([`GeneratorConfig::notify`]).
pub fn generate_shards_naming(
    counts: &[usize],
    transfers: u32,
    seed: u64,
    threads: usize,
    notify: Option<(lading_domain::PartyId, u64)>,
) -> Result<Vec<Vec<String>>> {
    let parties = FixtureParties::load()?;
    let threads = threads.clamp(1, counts.len().max(1));
    let per_doc = u64::from(transfers) + 1;
    let make = |i: usize| -> Result<Vec<String>> {
        let count = counts[i];
        let mut config =
            GeneratorConfig::new((count as u64).div_ceil(per_doc), transfers, seed + i as u64);
        config.reference_prefix = format!("L{i}");
        config.notify = notify.clone();
        let mut generator = LedgerGenerator::new(&parties, config)?;
        let shard = generator.next_batch(count)?;
        if shard.len() != count {
            bail!(
                "shard {i}: generated {} of {count} transitions",
                shard.len()
            );
        }
        Ok(shard)
    };
    let mut out: Vec<Option<Vec<String>>> = vec![None; counts.len()];
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let make = &make;
                scope.spawn(move || -> Result<Vec<(usize, Vec<String>)>> {
                    (t..counts.len())
                        .step_by(threads)
                        .map(|i| make(i).map(|s| (i, s)))
                        .collect()
                })
            })
            .collect();
        for handle in handles {
            let made = handle
                .join()
                .map_err(|_| anyhow::anyhow!("a generator thread panicked"))??;
            for (i, shard) in made {
                out[i] = Some(shard);
            }
        }
        Ok(())
    })?;
    out.into_iter()
        .enumerate()
        .map(|(i, s)| s.with_context(|| format!("shard {i} missing")))
        .collect()
}

/// Nearest-rank percentile of `sorted` (ascending); `q` in `[0, 1]`. Zero when empty.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

/// Latency distribution of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    pub count: usize,
    pub median: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl LatencySummary {
    /// Sorts `samples` in place and summarises them.
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        Self {
            count: samples.len(),
            median: percentile(samples, 0.5),
            p99: percentile(samples, 0.99),
            max: samples.last().copied().unwrap_or_default(),
            mean: if samples.is_empty() {
                Duration::ZERO
            } else {
                total / u32::try_from(samples.len()).unwrap_or(u32::MAX)
            },
        }
    }
}

/// Median of `values` (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Fields of `/proc/<pid>/stat` that CPU accounting needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub ppid: u32,
    /// utime + stime of the process (all its threads), in clock ticks.
    pub own_ticks: u64,
    /// cutime + cstime: CPU of its children that it has reaped, in clock ticks.
    pub reaped_children_ticks: u64,
}

/// Parses one `/proc/<pid>/stat` line (the command name may contain spaces and parentheses,
/// so fields are counted from the last `)`).
pub fn parse_proc_stat(line: &str) -> Option<ProcStat> {
    let pid = line.split_whitespace().next()?.parse().ok()?;
    let rest = &line[line.rfind(')')? + 1..];
    // rest starts at field 3 (state); utime is field 14, so index 11 here.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(ProcStat {
        pid,
        ppid: u32::try_from(num(1)?).ok()?,
        own_ticks: num(11)? + num(12)?,
        reaped_children_ticks: num(13)? + num(14)?,
    })
}

fn read_stat(pid: u32) -> Option<ProcStat> {
    parse_proc_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn all_stats() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_stat)
        .collect()
}

/// Clock ticks per second of `/proc` times (`getconf CLK_TCK`, 100 on Linux by default).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// CPU time used so far by the process `root` and every descendant, live or reaped (reaped
/// descendants count through their parents' cutime/cstime).
pub fn tree_cpu(root: u32) -> Duration {
    let stats = all_stats();
    let mut children: HashMap<u32, Vec<&ProcStat>> = HashMap::new();
    for s in &stats {
        children.entry(s.ppid).or_default().push(s);
    }
    let Some(top) = stats.iter().find(|s| s.pid == root) else {
        return Duration::ZERO;
    };
    let mut ticks = 0;
    let mut stack = vec![top];
    while let Some(s) = stack.pop() {
        ticks += s.own_ticks + s.reaped_children_ticks;
        if let Some(kids) = children.get(&s.pid) {
            stack.extend(kids.iter().copied());
        }
    }
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}

/// CPU time all processors of the machine have spent busy (not idle, not waiting for I/O)
/// since boot, from the first line of `/proc/stat`.
pub fn machine_busy() -> Duration {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    busy_from_proc_stat(&text)
}

/// The busy time in the `cpu` line of a `/proc/stat` text: user, nice, system, irq, softirq
/// and steal (idle and iowait left out; guest time is already in user).
pub fn busy_from_proc_stat(text: &str) -> Duration {
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return Duration::ZERO;
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let ticks: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| v.get(i)).sum();
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}

/// CPU time of this process (all threads).
pub fn own_cpu() -> Duration {
    let ticks = read_stat(std::process::id()).map_or(0, |s| s.own_ticks);
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}

/// The request times the registry logged (`lading::http`: `answered request=<method> <path>
/// status=<status> ms=<ms>`, writes at `info`, reads at `debug`) for requests whose line
/// contains `request`, in the order logged. Lines of other shapes are skipped.
pub fn logged_request_times(log: &Path, request: &str) -> Result<Vec<Duration>> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    Ok(text
        .lines()
        .filter(|l| l.contains("lading::http") && l.contains(request))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|word| word.strip_prefix("ms="))?
                .parse::<f64>()
                .ok()
        })
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lading_domain::{Action, SignedTransition};
    use std::collections::HashMap;
    use std::time::Instant;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&x| Duration::from_millis(x)).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&sorted, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&sorted, 0.0), Duration::from_millis(1));
        let three = ms(&[10, 20, 30]);
        assert_eq!(percentile(&three, 0.5), Duration::from_millis(20));
        assert_eq!(percentile(&three, 0.99), Duration::from_millis(30));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn summary_sorts_and_reports_the_tail() {
        let mut samples = ms(&[7, 1, 3, 2, 100]);
        let s = LatencySummary::of(&mut samples);
        assert_eq!(s.count, 5);
        assert_eq!(s.median, Duration::from_millis(3));
        assert_eq!(s.p99, Duration::from_millis(100));
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(s.mean, Duration::from_nanos(22_600_000));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn split_evenly_keeps_the_total() {
        assert_eq!(split_evenly(10, 3), vec![4, 3, 3]);
        assert_eq!(split_evenly(2, 4), vec![1, 1, 0, 0]);
        assert_eq!(split_evenly(7, 0), vec![7]);
    }

    #[test]
    fn proc_stat_lines_parse_even_with_odd_names() {
        let line = "4242 (my (odd) name) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 40 7 3 20 0 4 0 123 0 0";
        let s = parse_proc_stat(line).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.ppid, 17);
        assert_eq!(s.own_ticks, 290);
        assert_eq!(s.reaped_children_ticks, 10);
        assert!(parse_proc_stat("garbage").is_none());
    }

    #[test]
    fn machine_busy_time_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 20 30 5000 70 4 6 1 0 0\ncpu0 50 10 15 2500 35 2 3 0 0 0\n";
        let ticks = 100 + 20 + 30 + 4 + 6 + 1;
        assert_eq!(
            busy_from_proc_stat(stat),
            Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
        );
        assert_eq!(busy_from_proc_stat("nothing"), Duration::ZERO);
        assert!(machine_busy() > Duration::ZERO);
    }

    #[test]
    fn this_process_is_seen_by_cpu_accounting() {
        // Burn a little CPU so at least one tick is charged.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        assert!(x != 42);
        // Read our own time first: the tree read after it includes at least as much (the
        // other way round, a tick charged in between would make the check flaky).
        let own = own_cpu();
        assert!(own > Duration::ZERO);
        assert!(tree_cpu(std::process::id()) >= own);
        assert_eq!(tree_cpu(u32::MAX), Duration::ZERO);
    }

    #[test]
    fn request_times_are_read_from_the_http_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("lading.log");
        std::fs::write(
            &log,
            "2026-11-24T00:00:00Z  INFO lading::http: answered request=POST /v1/transitions status=201 ms=3.25\n\
             2026-11-24T00:00:00Z  INFO lading_registry: sequencer stopped\n\
             2026-11-24T00:00:01Z DEBUG lading::http: answered request=GET /healthz status=200 ms=0.1\n\
             2026-11-24T00:00:01Z  INFO lading::http: answered request=POST /v1/transitions/batch status=200 ms=120.5\n",
        )
        .unwrap();
        let times = logged_request_times(&log, "POST /v1/transitions").unwrap();
        assert_eq!(
            times,
            vec![Duration::from_micros(3250), Duration::from_micros(120_500)]
        );
        assert_eq!(
            logged_request_times(&log, "GET /healthz").unwrap(),
            vec![Duration::from_micros(100)]
        );
    }

    /// Shards are independent: each starts every document with its ISSUE, continues it only in
    /// its own shard, and no document or transition appears in two shards.
    #[test]
    fn shards_hold_whole_documents_in_order() {
        let shards = generate_shards(&[13, 7, 0], 2, 5, 2).unwrap();
        assert_eq!(
            shards.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![13, 7, 0]
        );
        let mut owner: HashMap<String, usize> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (i, shard) in shards.iter().enumerate() {
            let mut heads: HashMap<String, lading_domain::Digest> = HashMap::new();
            for compact in shard {
                assert!(seen.insert(compact.clone()), "a transition appears twice");
                let t = SignedTransition::parse(compact).unwrap();
                let p = t.payload();
                let reference = p.document_reference().to_string();
                assert!(reference.starts_with(&format!("L{i}")));
                assert_eq!(*owner.entry(reference.clone()).or_insert(i), i);
                if p.action() == Action::Issue {
                    assert!(heads.insert(reference, t.checksum()).is_none());
                } else {
                    let head = heads
                        .get_mut(&reference)
                        .expect("transition before its ISSUE");
                    assert_eq!(p.previous_transition_checksum(), Some(&*head));
                    *head = t.checksum();
                }
            }
        }
    }
}
