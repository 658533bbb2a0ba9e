//! Socket inodes to addresses, from `/proc/self/net/{tcp,tcp6,udp,udp6,unix}`.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A socket found by its inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) protocol: &'static str,
    pub(crate) local: String,
    pub(crate) peer: Option<String>,
}

/// Finds the socket with `inode` in this process's network tables.
pub(crate) fn find(inode: u64) -> Option<Found> {
    for protocol in ["tcp", "tcp6", "udp", "udp6"] {
        let Ok(table) = std::fs::read_to_string(format!("/proc/self/net/{protocol}")) else {
            continue;
        };
        if let Some(found) = find_inet(&table, protocol, inode) {
            return Some(found);
        }
    }
    let table = std::fs::read_to_string("/proc/self/net/unix").ok()?;
    find_unix(&table, inode)
}

/// A row of `tcp`/`udp` tables: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode`.
pub(crate) fn find_inet(table: &str, protocol: &'static str, inode: u64) -> Option<Found> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(9)?.parse::<u64>().ok()? != inode {
            return None;
        }
        let local = address(fields.get(1)?)?;
        let remote = address(fields.get(2)?)?;
        let peer = (!remote.ends_with(":0")).then_some(remote);
        Some(Found {
            protocol,
            local,
            peer,
        })
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits (IPv6), each 32-bit word in host order.
pub(crate) fn address(field: &str) -> Option<String> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    match ip.len() {
        8 => {
            let word = u32::from_str_radix(ip, 16).ok()?;
            Some(format!("{}:{port}", Ipv4Addr::from(word.to_ne_bytes())))
        }
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            let ip = Ipv6Addr::from(bytes);
            Some(match ip.to_ipv4_mapped() {
                Some(v4) => format!("{v4}:{port}"),
                None => format!("[{ip}]:{port}"),
            })
        }
        _ => None,
    }
}

/// A row of the `unix` table: `Num RefCount Protocol Flags Type St Inode [Path]`.
pub(crate) fn find_unix(table: &str, inode: u64) -> Option<Found> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(6)?.parse::<u64>().ok()? != inode {
            return None;
        }
        Some(Found {
            protocol: "unix",
            local: fields
                .get(7)
                .map_or_else(|| format!("unnamed socket [{inode}]"), |p| (*p).to_owned()),
            peer: None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn inet_rows_give_both_addresses() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 20 4 30 10 -1\n";
        let found = find_inet(table, "tcp", 12345).unwrap();
        assert_eq!(found.local, "127.0.0.1:8080");
        assert_eq!(found.peer.as_deref(), Some("127.0.0.1:50000"));
        assert_eq!(find_inet(table, "tcp", 1), None);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn ipv6_addresses_are_decoded() {
        assert_eq!(
            address("00000000000000000000000001000000:0050").as_deref(),
            Some("[::1]:80")
        );
        assert_eq!(
            address("0000000000000000FFFF00000100007F:1F90").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(address("00000000:0000").as_deref(), Some("0.0.0.0:0"));
        assert_eq!(address("zz"), None);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn tcp6_rows_give_bracketed_addresses_and_listeners_have_no_peer() {
        let table = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 0 10 -1\n   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 100 0 0 10 0\n";
        let found = find_inet(table, "tcp6", 4242).unwrap();
        assert_eq!(
            (found.protocol, found.local.as_str(), found.peer.as_deref()),
            ("tcp6", "[::1]:8080", Some("[::1]:54321"))
        );
        let listener = find_inet(table, "tcp6", 4243).unwrap();
        assert_eq!((listener.local.as_str(), listener.peer), ("[::]:80", None));
    }

    #[test]
    fn unix_rows_give_the_path() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 777 /run/app.sock\n0000000000000000: 00000003 00000000 00000000 0001 03 778\n";
        assert_eq!(find_unix(table, 777).unwrap().local, "/run/app.sock");
        assert!(find_unix(table, 778).unwrap().local.contains("unnamed"));
    }
}
