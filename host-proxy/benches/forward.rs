//! host-proxy versus socat, side by side in one run, on the same loopback traffic.
//!
//! `cargo bench -p host-proxy --bench forward` (needs `socat` on PATH: `apt-get install socat`).
//! One backend in this process (a fixed pool of threads) serves two modes chosen by the first byte: `S` (sink: count the
//! bytes until EOF, answer the count) and `E` (echo). Three paths reach it: direct, through the
//! release `host-proxy` binary, and through `socat TCP-LISTEN:…,fork TCP:…` (the usual way a
//! parent instance forwards to an enclave). Measured per path:
//! - throughput: one stream of 1 GiB, and 4 parallel streams of 256 MiB, into the sink;
//! - per-connection latency: connect, a 1-byte echo round trip, close (2000 connections per
//!   path, interleaved); "added" is the path's percentile minus the direct percentile;
//! - round trip on an established connection (10000 1-byte echoes per path);
//! - CPU time the forwarder spends per connection (from `/proc/<pid>/stat`), which depends far
//!   less on other load on the machine than the latencies do.
//!
//! The forwarders run on their own CPUs (the upper half of those this process may use), the
//! bench client and backend on the rest, as in a deployment: the client is on another machine
//! and the enclave has CPUs of its own, so the proxy does not compete with either for a CPU.
//! `FORWARD_BENCH_PIN=0` runs everything on all CPUs instead.
//!
//! Environment: `FORWARD_BENCH_ROUNDS` (default 3; the median round is reported),
//! `FORWARD_BENCH_PROXY_ARGS` (extra host-proxy arguments, e.g. `--threads 1`; without a
//! `--preconnect` of its own the proxy gets `--preconnect 2`, as `deploy/host-proxy` sets it),
//! `FORWARD_BENCH_STREAM_MIB` (default 1024: the bytes each throughput measure sends),
//! `FORWARD_BENCH_PIN` (default 1).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const STREAM_BYTES: u64 = 1 << 30;
const PARALLEL_STREAMS: u64 = 4;
const CHUNK: usize = 256 * 1024;
const CONNECTIONS: usize = 2000;
const ROUND_TRIPS: usize = 10_000;
/// Connections the backend serves at once (the parallel streams, socat's probe, health checks).
const BACKEND_THREADS: usize = 16;

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        // `cargo bench -- --list` and test discovery: nothing to list.
        return;
    }
    let rounds: usize = std::env::var("FORWARD_BENCH_ROUNDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(3)
        .max(1);
    let stream_bytes = std::env::var("FORWARD_BENCH_STREAM_MIB")
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .map_or(STREAM_BYTES, |mib| mib.max(1) << 20);
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    // Before any thread starts, so that the backend's threads inherit the pinning.
    let pinning = pin();
    let backend = start_backend();
    let forwarder_cpus = pinning.as_ref().map(|pinning| pinning.forwarders.as_str());
    let mut proxy = start_host_proxy(backend, forwarder_cpus);
    let Some(mut socat) = start_socat(backend, forwarder_cpus) else {
        eprintln!("socat is not installed (apt-get install socat): nothing to compare with");
        std::process::exit(1);
    };
    let paths = [
        ("direct", backend),
        ("host-proxy", proxy.address),
        ("socat", socat.address),
    ];
    println!(
        "host-proxy vs socat, loopback, {} CPUs, {rounds} rounds (median reported)",
        cpus
    );
    match &pinning {
        Some(Pinning { bench, forwarders }) => println!(
            "pinned: bench client and backend on CPUs {bench}, forwarders on CPUs {forwarders} \
             (FORWARD_BENCH_PIN=0 to share all CPUs)"
        ),
        None => println!("not pinned: the forwarders share every CPU with the client and backend"),
    }
    println!("host-proxy arguments: {}", proxy_arguments().join(" "));

    let mut single = Vec::new();
    let mut parallel = Vec::new();
    let mut per_connection = Vec::new();
    let mut established = Vec::new();
    let mut cpu_per_connection = Vec::new();
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        single.push(paths.map(|(_, address)| sink_throughput(address, 1, stream_bytes)));
        parallel.push(paths.map(|(_, address)| {
            sink_throughput(address, PARALLEL_STREAMS, stream_bytes / PARALLEL_STREAMS)
        }));
        let cpu_before = [cpu_seconds(proxy.child.id()), cpu_seconds(socat.child.id())];
        per_connection.push(connection_latencies(&paths.map(|(_, address)| address)));
        // socat reaps each forked child shortly after its connection ends.
        std::thread::sleep(Duration::from_millis(500));
        let cpu_after = [cpu_seconds(proxy.child.id()), cpu_seconds(socat.child.id())];
        cpu_per_connection.push(
            [0, 1].map(|index| (cpu_after[index] - cpu_before[index]) / CONNECTIONS as f64 * 1e6),
        );
        established.push(paths.map(|(_, address)| established_round_trips(address)));
    }

    println!();
    println!("throughput (MB/s, 1 MB = 10^6 bytes), into a sink:");
    let single_label = format!("1 stream x {} MiB", stream_bytes >> 20);
    let parallel_label = format!(
        "{PARALLEL_STREAMS} streams x {} MiB",
        (stream_bytes / PARALLEL_STREAMS) >> 20
    );
    for (label, runs) in [(&single_label, &single), (&parallel_label, &parallel)] {
        let median = |index: usize| median(runs.iter().map(|run| run[index]).collect());
        let (direct, ours, socat) = (median(0), median(1), median(2));
        println!(
            "  {label:<22} direct {direct:>8.0}   host-proxy {ours:>8.0}   socat {socat:>8.0}   \
             host-proxy/socat {:.2}x",
            ours / socat
        );
    }

    for (label, runs) in [
        (
            "per connection (connect + 1-byte echo + close)",
            &per_connection,
        ),
        (
            "established connection, 1-byte echo round trip",
            &established,
        ),
    ] {
        println!();
        println!("{label}, microseconds:");
        // The round whose host-proxy p50 is the median of the rounds.
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by(|&x, &y| {
            percentile(&runs[x][1], 0.5).total_cmp(&percentile(&runs[y][1], 0.5))
        });
        let run = &runs[order[order.len() / 2]];
        let direct_p50 = percentile(&run[0], 0.5);
        let direct_p99 = percentile(&run[0], 0.99);
        for (index, (name, _)) in paths.iter().enumerate() {
            let p50 = percentile(&run[index], 0.5);
            let p99 = percentile(&run[index], 0.99);
            if index == 0 {
                println!("  {name:<11} p50 {p50:>8.1}   p99 {p99:>8.1}");
            } else {
                println!(
                    "  {name:<11} p50 {p50:>8.1}   p99 {p99:>8.1}   added p50 {:>7.1}   added p99 {:>7.1}",
                    p50 - direct_p50,
                    p99 - direct_p99
                );
            }
        }
        let added = |index: usize, quantile: f64| {
            percentile(&run[index], quantile) - percentile(&run[0], quantile)
        };
        println!(
            "  added latency host-proxy/socat: p50 {:.2}x, p99 {:.2}x",
            added(1, 0.5) / added(2, 0.5),
            added(1, 0.99) / added(2, 0.99)
        );
    }
    println!();
    println!(
        "CPU time per connection in the forwarder (user + system, from /proc; socat: the \
         listener and its reaped children), microseconds:"
    );
    let ours = median(cpu_per_connection.iter().map(|run| run[0]).collect());
    let theirs = median(cpu_per_connection.iter().map(|run| run[1]).collect());
    println!(
        "  host-proxy {ours:>8.1}   socat {theirs:>8.1}   host-proxy/socat {:.2}x",
        ours / theirs
    );
    proxy.stop();
    socat.stop();
}

/// CPU seconds of a process and its reaped children (`utime + stime + cutime + cstime`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name (which may contain spaces) start at field 3.
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields[11..15]
        .iter()
        .map(|field| field.parse::<u64>().expect("tick count"))
        .sum();
    // USER_HZ is 100 on Linux for every architecture this runs on.
    ticks as f64 / 100.0
}

/// A forwarder process under test, killed on drop.
struct Forwarder {
    child: Child,
    address: SocketAddr,
}

impl Forwarder {
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// CPU lists (as `taskset -c` takes them) for the bench process and for the forwarders.
struct Pinning {
    bench: String,
    forwarders: String,
}

/// Pins this process to the lower half of its allowed CPUs and returns the upper half for the
/// forwarders; `None` (nothing pinned) with fewer than 2 CPUs, without `taskset`, or with
/// `FORWARD_BENCH_PIN=0`.
fn pin() -> Option<Pinning> {
    if std::env::var("FORWARD_BENCH_PIN").is_ok_and(|value| value == "0") {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let allowed = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    let mut cpus = Vec::new();
    for part in allowed.split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        cpus.extend(first.parse::<usize>().ok()?..=last.parse::<usize>().ok()?);
    }
    if cpus.len() < 2 {
        return None;
    }
    let list = |cpus: &[usize]| {
        cpus.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let (bench, forwarders) = cpus.split_at(cpus.len() - cpus.len() / 2);
    let pinning = Pinning {
        bench: list(bench),
        forwarders: list(forwarders),
    };
    let pinned = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &pinning.bench,
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !pinned {
        eprintln!("taskset failed: running unpinned");
        return None;
    }
    Some(pinning)
}

/// The host-proxy arguments beyond listen, backend, log level and limit.
fn proxy_arguments() -> Vec<String> {
    let mut arguments: Vec<String> = std::env::var("FORWARD_BENCH_PROXY_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !arguments
        .iter()
        .any(|argument| argument == "--preconnect" || argument.starts_with("--preconnect="))
    {
        arguments.extend(["--preconnect".to_owned(), "2".to_owned()]);
    }
    arguments
}

/// A command for `program`, under `taskset -c cpus` when given.
fn command_on(cpus: Option<&str>, program: &str) -> Command {
    match cpus {
        Some(cpus) => {
            let mut command = Command::new("taskset");
            command.args(["-c", cpus, program]);
            command
        }
        None => Command::new(program),
    }
}

fn start_host_proxy(backend: SocketAddr, cpus: Option<&str>) -> Forwarder {
    let mut child = command_on(cpus, env!("CARGO_BIN_EXE_host-proxy"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--backend",
            &format!("tcp:{backend}"),
            "--log-level",
            "warn",
            "--max-connections",
            "10000",
        ])
        .args(proxy_arguments())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start host-proxy");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut address = None;
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut stdout, &mut line).expect("read stdout") > 0 {
        if let Some(rest) = line.trim().strip_prefix("listening on ") {
            address = rest.parse().ok();
        }
        if line.trim() == "ready" {
            break;
        }
        line.clear();
    }
    let address = address.expect("host-proxy printed its address");
    // Keep draining stdout so the proxy never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    Forwarder { child, address }
}

fn start_socat(backend: SocketAddr, cpus: Option<&str>) -> Option<Forwarder> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let installed = Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !installed {
        return None;
    }
    let child = command_on(cpus, "socat")
        .args([
            format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay,backlog=1024"),
            format!("TCP:{backend},nodelay"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let forwarder = Forwarder { child, address };
    let deadline = Instant::now() + Duration::from_secs(10);
    // Ready when an echo goes through.
    loop {
        if let Ok(mut stream) = TcpStream::connect(address)
            && stream.write_all(b"Ex").is_ok()
        {
            let mut reply = [0u8; 2];
            if stream.read_exact(&mut reply).is_ok() {
                return Some(forwarder);
            }
        }
        assert!(Instant::now() < deadline, "socat did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The backend: a fixed pool of threads, each accepting and serving one connection at a time
/// (no thread start in the measured path); first byte `S` = sink, `E` = echo.
fn start_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
    let address = listener.local_addr().expect("addr");
    for _ in 0..BACKEND_THREADS {
        let listener = listener.try_clone().expect("clone listener");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                serve(stream);
            }
        });
    }
    address
}

fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut mode = [0u8; 1];
    if stream.read_exact(&mut mode).is_err() {
        return;
    }
    let mut buffer = vec![0u8; CHUNK];
    match mode[0] {
        b'S' => {
            let mut total = 0u64;
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(read) => total += read as u64,
                    Err(_) => return,
                }
            }
            let _ = stream.write_all(&total.to_be_bytes());
        }
        b'E' => {
            if stream.write_all(b"E").is_err() {
                return;
            }
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => {
                        if stream.write_all(&buffer[..read]).is_err() {
                            return;
                        }
                    }
                }
            }
        }
        _ => {}
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// MB/s of `streams` parallel uploads of `bytes_each` into the sink.
fn sink_throughput(address: SocketAddr, streams: u64, bytes_each: u64) -> f64 {
    let started = Instant::now();
    let workers: Vec<_> = (0..streams)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(address).expect("connect");
                stream.write_all(b"S").expect("mode");
                let chunk = vec![0x5au8; CHUNK];
                let mut sent = 0u64;
                while sent < bytes_each {
                    let size = (bytes_each - sent).min(CHUNK as u64) as usize;
                    stream.write_all(&chunk[..size]).expect("send");
                    sent += size as u64;
                }
                stream.shutdown(Shutdown::Write).expect("half-close");
                let mut count = [0u8; 8];
                stream.read_exact(&mut count).expect("count");
                assert_eq!(u64::from_be_bytes(count), bytes_each, "sink count");
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("stream");
    }
    (streams * bytes_each) as f64 / started.elapsed().as_secs_f64() / 1e6
}

/// Per path: microseconds for connect + 1-byte echo + close, paths interleaved.
fn connection_latencies(addresses: &[SocketAddr; 3]) -> [Vec<f64>; 3] {
    let mut samples: [Vec<f64>; 3] = Default::default();
    for _ in 0..CONNECTIONS {
        for (index, address) in addresses.iter().enumerate() {
            let started = Instant::now();
            let mut stream = TcpStream::connect(address).expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            stream.write_all(b"E").expect("mode");
            let mut reply = [0u8; 1];
            stream.read_exact(&mut reply).expect("echo");
            samples[index].push(started.elapsed().as_secs_f64() * 1e6);
            drop(stream);
        }
    }
    samples
}

/// Microseconds per 1-byte echo on one established connection.
fn established_round_trips(address: SocketAddr) -> Vec<f64> {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream.write_all(b"E").expect("mode");
    let mut reply = [0u8; 1];
    stream.read_exact(&mut reply).expect("mode echo");
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for index in 0..ROUND_TRIPS {
        let byte = [index as u8];
        let started = Instant::now();
        stream.write_all(&byte).expect("send");
        stream.read_exact(&mut reply).expect("echo");
        samples.push(started.elapsed().as_secs_f64() * 1e6);
        assert_eq!(reply, byte);
    }
    samples
}

fn percentile(samples: &[f64], quantile: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() - 1) as f64 * quantile).round() as usize;
    sorted[rank]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
