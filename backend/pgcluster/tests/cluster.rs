//! Real clusters: initdb, start, connect, restart, crash.
// Helpers outside #[test] functions fail loudly too: this whole file is tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lading_pgcluster::{shared_test_cluster, Cluster, ClusterOptions};

const HELPER_ENV: &str = "LADING_PGCLUSTER_TEST_HELPER_ROOT";

fn is_root() -> bool {
    // /proc/self belongs to the effective uid.
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// A base directory the `postgres` account can traverse when we are root.
fn base_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lading-pgcluster-it-")
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir()
        .unwrap()
}

fn psql_bin(cluster: &Cluster) -> PathBuf {
    let beside = cluster.bin_dir().join("psql");
    if beside.exists() {
        beside
    } else {
        PathBuf::from("/usr/bin/psql")
    }
}

/// psql through the public URL only, so the URL itself is under test.
fn psql(cluster: &Cluster, url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new(psql_bin(cluster))
        .args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Gone, or a zombie nobody has reaped yet.
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s == "Z" || s == "X"),
    }
}

fn wait_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if process_gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    process_gone(pid)
}

#[test]
fn start_connect_stop_restart_keeps_data_port_and_password() {
    let base = base_dir();
    let root = base.path().join("cluster");
    let cluster = Cluster::start(ClusterOptions::new(&root)).unwrap();
    assert!(cluster.is_running());
    assert_eq!(cluster.root(), root.canonicalize().unwrap());

    TcpStream::connect((Ipv4Addr::LOCALHOST, cluster.port())).unwrap();
    let url = cluster.url("postgres");
    assert_eq!(
        url,
        format!(
            "postgres://lading:{}@127.0.0.1:{}/postgres",
            cluster.password(),
            cluster.port()
        )
    );
    assert_eq!(cluster.password().len(), 32);
    assert!(cluster.password().bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(psql(&cluster, &url, "SELECT 1").unwrap(), "1");
    // Durable defaults are in force.
    assert_eq!(psql(&cluster, &url, "SHOW fsync").unwrap(), "on");
    assert_eq!(psql(&cluster, &url, "SHOW max_connections").unwrap(), "200");
    assert_eq!(
        psql(&cluster, &url, "SHOW listen_addresses").unwrap(),
        "127.0.0.1"
    );
    // The owner's URL goes through the Unix socket (no server address), with the same password.
    let local = cluster.local_url("postgres");
    assert!(local.contains("%2Fsocket:"), "{local}");
    assert_eq!(
        psql(&cluster, &local, "SELECT inet_server_addr() IS NULL").unwrap(),
        "t"
    );
    // A wrong password is refused: authentication is really on.
    let wrong = url.replace(cluster.password(), "0123456789abcdef0123456789abcdef");
    assert!(psql(&cluster, &wrong, "SELECT 1").is_err());

    let pw_meta = std::fs::metadata(root.join("superuser.password")).unwrap();
    assert_eq!(pw_meta.mode() & 0o777, 0o600);
    if is_root() {
        // The server's account owns pgdata and cannot read the password.
        assert_ne!(std::fs::metadata(cluster.pgdata()).unwrap().uid(), 0);
        let pw_path = root.canonicalize().unwrap().join("superuser.password");
        let read = psql(
            &cluster,
            &url,
            &format!("SELECT pg_read_file('{}')", pw_path.display()),
        );
        assert!(
            read.is_err(),
            "server could read the password file: {read:?}"
        );
    }

    psql(
        &cluster,
        &url,
        "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives restart')",
    )
    .unwrap();
    let (port, password, pid) = (cluster.port(), cluster.password().to_owned(), cluster.pid());
    cluster.stop().unwrap();
    assert!(
        wait_gone(pid, Duration::from_secs(5)),
        "postmaster {pid} still there after stop"
    );
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());

    let again = Cluster::start(ClusterOptions::new(&root)).unwrap();
    assert_eq!(again.port(), port, "port is remembered across restarts");
    assert_eq!(again.password(), password);
    assert_eq!(again.url("postgres"), url);
    assert_eq!(
        psql(&again, &url, "SELECT v FROM kept").unwrap(),
        "survives restart"
    );
    let log = std::fs::read_to_string(again.log_path()).unwrap();
    assert_eq!(
        log.matches("lading-pgcluster: starting postgres").count(),
        2
    );
    drop(again);
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
}

#[test]
fn a_second_start_on_a_running_dir_fails_clearly() {
    let base = base_dir();
    let root = base.path().join("cluster");
    let first = Cluster::start(ClusterOptions::new(&root)).unwrap();
    let err = Cluster::start(ClusterOptions::new(&root)).unwrap_err();
    assert_eq!(err.code(), "cluster_already_running");
    let msg = err.to_string();
    assert!(msg.contains("already running"), "{msg}");
    assert!(msg.contains(&std::process::id().to_string()), "{msg}");
    // The failed attempt did not disturb the running one.
    assert!(first.is_running());
    assert_eq!(
        psql(&first, &first.url("postgres"), "SELECT 1").unwrap(),
        "1"
    );
    first.stop().unwrap();
    // Once stopped, the directory can be started again.
    Cluster::start(ClusterOptions::new(&root))
        .unwrap()
        .stop()
        .unwrap();
}

#[test]
fn settings_are_applied_and_reserved_ones_refused() {
    let base = base_dir();
    let root = base.path().join("cluster");
    let err = Cluster::start(ClusterOptions::new(&root).setting("port", "1")).unwrap_err();
    assert_eq!(err.code(), "invalid_cluster_option");
    // A value postgres rejects: the error carries postgres' own complaint.
    let err = Cluster::start(ClusterOptions::new(&root).setting("work_mem", "lots")).unwrap_err();
    assert_eq!(err.code(), "postgres_start_failed");
    let msg = err.to_string();
    assert!(msg.contains("work_mem"), "{msg}");
    assert!(msg.contains("postgres.log"), "{msg}");
    let cluster = Cluster::start(ClusterOptions::new(&root).setting("work_mem", "7MB")).unwrap();
    assert_eq!(
        psql(&cluster, &cluster.url("postgres"), "SHOW work_mem").unwrap(),
        "7MB"
    );
}

#[test]
fn kill_immediately_stops_the_server_and_it_recovers() {
    let base = base_dir();
    let root = base.path().join("cluster");
    let mut cluster = Cluster::start(ClusterOptions::new(&root)).unwrap();
    cluster
        .psql(
            "postgres",
            "CREATE TABLE t (v int); INSERT INTO t VALUES (42)",
        )
        .unwrap();
    let pid = cluster.pid();
    cluster.kill_immediately();
    assert!(!cluster.is_running());
    assert!(process_gone(pid));
    drop(cluster);
    let again = Cluster::start(ClusterOptions::new(&root)).unwrap();
    assert_eq!(
        again.psql("postgres", "SELECT v FROM t").unwrap().trim(),
        "42"
    );
}

#[test]
fn a_server_we_do_not_own_on_the_data_dir_is_refused() {
    let base = base_dir();
    let root = base.path().join("cluster");
    let cluster = Cluster::start(ClusterOptions::new(&root)).unwrap();
    let pgdata = cluster.pgdata().to_path_buf();
    let bin = cluster.bin_dir().join("postgres");
    cluster.stop().unwrap();

    // Somebody starts the server by hand on our data directory.
    let owner = std::fs::metadata(&pgdata).unwrap();
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(bin);
    cmd.arg("-D")
        .arg(&pgdata)
        .args(["-c", "listen_addresses=127.0.0.1", "-k", "", "-p"])
        .arg(port.to_string())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if is_root() {
        std::os::unix::process::CommandExt::uid(&mut cmd, owner.uid());
        std::os::unix::process::CommandExt::gid(&mut cmd, owner.gid());
    }
    let mut foreign = cmd.spawn().unwrap();
    let pidfile = pgdata.join("postmaster.pid");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&pidfile)
        .is_ok_and(|t| t.lines().nth(7).is_some_and(|l| l.trim() == "ready"))
    {
        assert!(
            Instant::now() < deadline,
            "hand-started server never became ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let started = Instant::now();
    let err = Cluster::start(ClusterOptions::new(&root)).unwrap_err();
    assert_eq!(err.code(), "data_dir_in_use");
    assert!(err.to_string().contains(&foreign.id().to_string()), "{err}");
    // Not mistaken for our own orphan: refused at once, without the grace wait.
    assert!(started.elapsed() < Duration::from_secs(5));

    Command::new("kill")
        .args(["-INT", &foreign.id().to_string()])
        .status()
        .unwrap();
    foreign.wait().unwrap();
    // With the stranger gone, the directory is ours again.
    Cluster::start(ClusterOptions::new(&root))
        .unwrap()
        .stop()
        .unwrap();
}

#[test]
fn a_root_the_server_account_cannot_reach_is_refused() {
    if !is_root() {
        eprintln!("skipped: only meaningful when running as root");
        return;
    }
    let base = tempfile::tempdir().unwrap(); // 0700, owned by root
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let err = Cluster::start(ClusterOptions::new(base.path().join("cluster"))).unwrap_err();
    assert_eq!(err.code(), "data_dir_not_traversable");
    assert!(
        err.to_string().contains(&base.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn shared_test_cluster_is_one_cluster_per_process() {
    let a = shared_test_cluster().unwrap();
    let b = shared_test_cluster().unwrap();
    assert!(std::ptr::eq(a, b));
    let name = a.root().file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("lading-test-pg-"), "{name}");
    assert!(a.root().starts_with("/tmp"));
    assert_eq!(a.psql("postgres", "SHOW fsync").unwrap().trim(), "off");
    let url = a.create_database("shared_check").unwrap();
    assert!(url.ends_with("/shared_check"));
    assert_eq!(
        psql(a, &url, "SELECT current_database()").unwrap(),
        "shared_check"
    );
}

/// Not a test on its own: the body of the child process that
/// `the_postmaster_dies_with_its_owner` starts and then kills.
#[test]
fn pdeathsig_helper_process() {
    let Ok(root) = std::env::var(HELPER_ENV) else {
        return;
    };
    let cluster = Cluster::start(ClusterOptions::new(root)).unwrap();
    cluster
        .psql(
            "postgres",
            "CREATE TABLE crash (v int); INSERT INTO crash VALUES (7)",
        )
        .unwrap();
    let mut out = std::io::stdout();
    writeln!(out, "POSTMASTER_PID={}", cluster.pid()).unwrap();
    out.flush().unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn the_postmaster_dies_with_its_owner() {
    let base = base_dir();
    let root = base.path().join("cluster");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "pdeathsig_helper_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, &root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let pid: u32 = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        // libtest may have written "test name ... " on the same line.
        .find_map(|l| {
            l.split_once("POSTMASTER_PID=")
                .map(|(_, p)| p.trim().parse().unwrap())
        })
        .expect("helper did not report a postmaster pid");
    assert!(
        !process_gone(pid),
        "postmaster {pid} not running in the helper"
    );

    child.kill().unwrap(); // SIGKILL: no destructor, no atexit, nothing runs
    child.wait().unwrap();
    assert!(
        wait_gone(pid, Duration::from_secs(15)),
        "postmaster {pid} outlived its owner"
    );

    let log = std::fs::read_to_string(root.join("postgres.log")).unwrap();
    assert!(
        log.contains("received immediate shutdown request"),
        "the postmaster did not get SIGQUIT:\n{log}"
    );

    // The directory is free again and the committed row survived the crash.
    let cluster = Cluster::start(ClusterOptions::new(&root)).unwrap();
    assert_eq!(
        cluster
            .psql("postgres", "SELECT v FROM crash")
            .unwrap()
            .trim(),
        "7"
    );
    cluster.stop().unwrap();
}

#[test]
fn a_taken_fixed_port_is_reported() {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = base_dir();
    let opts = ClusterOptions {
        port: Some(port),
        ..ClusterOptions::new(base.path().join("cluster"))
    };
    let err = Cluster::start(opts).unwrap_err();
    assert_eq!(err.code(), "port_in_use");
    assert!(err.to_string().contains(&port.to_string()));
}

/// Compile-time: the binary shares one cluster across threads.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Cluster>();
};
