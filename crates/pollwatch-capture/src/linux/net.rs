//! A socket's protocol and addresses, asked of the socket itself: the stalled thread's
//! descriptor is this process's (threads share one descriptor table), so `getsockname`,
//! `getpeername` and `getsockopt` on it cost a few syscalls whatever the number of sockets
//! on the host, where reading `/proc/self/net/tcp*` would read every socket's row. `fstat`
//! first checks that the descriptor is still the socket the thread sleeps on.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// A socket found by its descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) protocol: &'static str,
    pub(crate) local: String,
    pub(crate) peer: Option<String>,
}

/// The socket at descriptor `fd`, if it is still the socket with `inode`.
pub(crate) fn of_fd(fd: i32, inode: u64) -> Option<Found> {
    if inode_of(fd)? != inode {
        return None;
    }
    let domain = option(fd, libc::SO_DOMAIN)?;
    let kind = option(fd, libc::SO_TYPE)?;
    let protocol = match (domain, kind) {
        (libc::AF_INET, libc::SOCK_STREAM) => "tcp",
        (libc::AF_INET6, libc::SOCK_STREAM) => "tcp6",
        (libc::AF_INET, libc::SOCK_DGRAM) => "udp",
        (libc::AF_INET6, libc::SOCK_DGRAM) => "udp6",
        (libc::AF_UNIX, _) => "unix",
        _ => return None,
    };
    let local = name(fd, libc::getsockname).map(|a| show(&a, inode));
    let peer = name(fd, libc::getpeername).map(|a| show(&a, inode));
    Some(Found {
        protocol,
        local: local.unwrap_or_else(|| format!("unnamed socket [{inode}]")),
        peer: peer.filter(|_| protocol != "unix"),
    })
}

/// The socket at descriptor `fd` of process `pid`, if it is still the socket with `inode`: a
/// copy of the descriptor taken with `pidfd_getfd` (Linux 5.6; the same permission as
/// `ptrace`), asked like one of this process's, then closed. The socket is shared, never
/// changed: only its names and type are read.
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub(crate) fn of_remote_fd(pid: i32, fd: i32, inode: u64) -> Option<Found> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let pidfd = i32::try_from(pidfd).ok().filter(|&d| d >= 0)?;
    // SAFETY: pidfd_getfd takes the pidfd, the target's descriptor number and flags, and
    // returns a new descriptor of this process or -1.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) };
    // SAFETY: `pidfd` is a descriptor this function opened and closes once.
    unsafe { libc::close(pidfd) };
    let copy = i32::try_from(copy).ok().filter(|&d| d >= 0)?;
    let found = of_fd(copy, inode);
    // SAFETY: `copy` is a descriptor this function got and closes once.
    unsafe { libc::close(copy) };
    found
}

/// The inode of the file at descriptor `fd`.
fn inode_of(fd: i32) -> Option<u64> {
    // SAFETY: `stat` is plain data; fstat writes it whole on success and reads nothing else.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat only writes into `stat`, owned here; on a closed descriptor it fails.
    (unsafe { libc::fstat(fd, &mut stat) } == 0).then_some(stat.st_ino)
}

/// An integer socket option of descriptor `fd`.
fn option(fd: i32, name: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`, owned here; on a descriptor
    // that is not a socket it fails without writing.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            std::ptr::addr_of_mut!(value).cast(),
            &mut len,
        )
    };
    (result == 0).then_some(value)
}

/// A socket address as `getsockname` or `getpeername` gives it.
enum Address {
    Inet(SocketAddr),
    Unix(String),
}

type NameFn =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

/// The address `call` (`getsockname` or `getpeername`) gives for `fd`.
fn name(fd: i32, call: NameFn) -> Option<Address> {
    // SAFETY: `sockaddr_storage` is plain data, large enough for every address family.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the call writes at most `len` bytes into `storage`, owned here, and the length
    // of the address into `len`; it fails (ENOTCONN, ENOTSOCK, EBADF) without writing.
    if unsafe { call(fd, std::ptr::addr_of_mut!(storage).cast(), &mut len) } != 0 {
        return None;
    }
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a `sockaddr_in`.
            let a: libc::sockaddr_in =
                unsafe { std::ptr::read(std::ptr::addr_of!(storage).cast()) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(Address::Inet(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a `sockaddr_in6`.
            let a: libc::sockaddr_in6 =
                unsafe { std::ptr::read(std::ptr::addr_of!(storage).cast()) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(Address::Inet(SocketAddr::V6(SocketAddrV6::new(
                ip, port, 0, 0,
            ))))
        }
        libc::AF_UNIX => {
            // SAFETY: the family says the storage holds a `sockaddr_un`.
            let a: libc::sockaddr_un =
                unsafe { std::ptr::read(std::ptr::addr_of!(storage).cast()) };
            let path_len = (len as usize).saturating_sub(std::mem::size_of::<libc::sa_family_t>());
            let bytes: Vec<u8> = a.sun_path[..path_len.min(a.sun_path.len())]
                .iter()
                .map(|&c| c as u8)
                .collect();
            Some(Address::Unix(unix_path(&bytes)))
        }
        _ => None,
    }
}

/// A unix socket's path: `@name` for an abstract one, empty for an unnamed one.
fn unix_path(bytes: &[u8]) -> String {
    match bytes.split_first() {
        Some((0, name)) => format!("@{}", String::from_utf8_lossy(name)),
        _ => {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            String::from_utf8_lossy(&bytes[..end]).into_owned()
        }
    }
}

/// An address as stalls show it: IPv4-mapped IPv6 addresses as IPv4.
fn show(address: &Address, inode: u64) -> String {
    match address {
        Address::Inet(SocketAddr::V6(v6)) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{}", v6.port()),
            None => format!("[{}]:{}", v6.ip(), v6.port()),
        },
        Address::Inet(v4) => v4.to_string(),
        Address::Unix(path) if path.is_empty() => format!("unnamed socket [{inode}]"),
        Address::Unix(path) => path.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::{UnixListener, UnixStream};

    use super::*;

    fn found(fd: i32) -> Option<Found> {
        of_fd(fd, inode_of(fd)?)
    }

    #[test]
    fn a_tcp_connection_gives_both_addresses_and_a_listener_no_peer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let client_found = found(client.as_raw_fd()).unwrap();
        assert_eq!(client_found.protocol, "tcp");
        assert_eq!(client_found.local, client.local_addr().unwrap().to_string());
        assert_eq!(
            client_found.peer,
            Some(listener.local_addr().unwrap().to_string())
        );
        let listening = found(listener.as_raw_fd()).unwrap();
        assert_eq!(listening.peer, None);
    }

    #[test]
    fn ipv6_sockets_are_bracketed_and_udp_is_udp() {
        if let Ok(listener) = TcpListener::bind("[::1]:0") {
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let f = found(client.as_raw_fd()).unwrap();
            assert_eq!(f.protocol, "tcp6");
            assert!(f.peer.unwrap().starts_with("[::1]:"));
        }
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let f = found(udp.as_raw_fd()).unwrap();
        assert_eq!((f.protocol, f.peer), ("udp", None));
        assert_eq!(f.local, udp.local_addr().unwrap().to_string());
    }

    #[test]
    fn unix_sockets_give_their_path_or_say_they_are_unnamed() {
        let dir = std::env::temp_dir().join(format!("pollwatch-net-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let listener = UnixListener::bind(&dir).unwrap();
        let f = found(listener.as_raw_fd()).unwrap();
        assert_eq!(f.protocol, "unix");
        assert_eq!(f.local, dir.display().to_string());
        let (a, _b) = UnixStream::pair().unwrap();
        let inode = inode_of(a.as_raw_fd()).unwrap();
        assert_eq!(
            found(a.as_raw_fd()).unwrap().local,
            format!("unnamed socket [{inode}]")
        );
        std::fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn a_descriptor_that_is_no_longer_the_socket_is_not_described() {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let inode = inode_of(udp.as_raw_fd()).unwrap();
        assert!(of_fd(udp.as_raw_fd(), inode + 1).is_none());
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(found(file.as_raw_fd()).is_none(), "not a socket");
    }
}
