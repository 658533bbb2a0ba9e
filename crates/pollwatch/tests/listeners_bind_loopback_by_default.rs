//! With no address configured, every socket pollwatch listens on is bound to loopback: the
//! console feed and `/metrics` reveal file paths, task names and syscall targets, so they are
//! never reachable from another host unless the user binds them elsewhere.
// One process: `init` installs the global subscriber once.
#![cfg(all(tokio_unstable, feature = "console", feature = "prometheus"))]

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// The socket inodes this process holds open.
fn own_socket_inodes() -> HashSet<u64> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// `0100007F:1A0D` (IPv4) or 32 hex digits + port (IPv6), as `/proc/net/tcp*` writes them.
fn parse_proc_addr(text: &str) -> SocketAddr {
    let (ip, port) = text.split_once(':').unwrap();
    let port = u16::from_str_radix(port, 16).unwrap();
    if ip.len() == 8 {
        let ip = u32::from_str_radix(ip, 16).unwrap();
        SocketAddr::from((Ipv4Addr::from(ip.to_ne_bytes()), port))
    } else {
        let mut bytes = [0u8; 16];
        for (word, chunk) in ip.as_bytes().chunks(8).enumerate() {
            let w = u32::from_str_radix(std::str::from_utf8(chunk).unwrap(), 16).unwrap();
            bytes[word * 4..word * 4 + 4].copy_from_slice(&w.to_ne_bytes());
        }
        SocketAddr::from((Ipv6Addr::from(bytes), port))
    }
}

/// The addresses this process listens on over TCP.
fn own_listening_addrs() -> Vec<SocketAddr> {
    let inodes = own_socket_inodes();
    let mut addrs = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for row in text.lines().skip(1) {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let listening = fields[3] == "0A";
            let inode: u64 = fields[9].parse().unwrap();
            if listening && inodes.contains(&inode) {
                addrs.push(parse_proc_addr(fields[1]));
            }
        }
    }
    addrs
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[test]
fn every_listener_binds_loopback_unless_told_otherwise() {
    for var in ["TOKIO_CONSOLE_BIND", "POLLWATCH_METRICS_ADDR"] {
        std::env::remove_var(var);
    }
    let dir = std::env::temp_dir().join(format!("pollwatch-loopback-{}", std::process::id()));
    std::env::set_var("POLLWATCH_REPORT_DIR", &dir);
    assert!(
        own_listening_addrs().is_empty(),
        "the test itself listens nowhere"
    );

    // Another program on this host may hold a default port; that output then runs without
    // its listener (tested elsewhere), and the others are still checked.
    let expected = [6669u16, 9464]
        .into_iter()
        .filter(|&port| port_is_free(port))
        .count();
    let guard = pollwatch::init();

    // The console server binds on its own thread: wait for it, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut addrs = own_listening_addrs();
    while addrs.len() < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        addrs = own_listening_addrs();
    }
    assert_eq!(
        addrs.len(),
        expected,
        "one listener per free default port: {addrs:?}"
    );
    for addr in &addrs {
        assert!(
            addr.ip().is_loopback(),
            "{addr} is reachable from other hosts"
        );
    }
    if let Some(metrics) = guard.metrics_addr() {
        assert!(addrs.contains(&metrics), "{metrics} is among {addrs:?}");
    }
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);
}
