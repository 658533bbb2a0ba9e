//! Which path clippy's `disallowed-methods` needs to catch a blocking API pollwatch named.
//!
//! Clippy matches the function a call resolves to. A free function or an inherent method
//! (`std::thread::sleep`, `std::fs::read`, `std::net::UdpSocket::recv`) is its own path. A
//! method of a trait impl (`std::net::TcpStream::read` is `<TcpStream as Read>::read`) resolves
//! to the trait's method, `std::io::Read::read`, which every reader shares: a rule on it flags
//! reads of files, byte slices and `Cursor`s too. Those are offered commented out, for a
//! codebase that wants them anyway.

/// How clippy can catch calls to one blocking API.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    /// `path` matches this API's calls and no others.
    Exact { path: String },
    /// Only the trait method `path` matches these calls, and it matches every impl's.
    TraitMethod { path: String },
    /// Clippy cannot express it; the text says why.
    Inexpressible { why: String },
}

/// The methods of the `std::io` traits a blocking type's impl provides, by trait.
const IO_TRAITS: [(&str, &[&str]); 3] = [
    (
        "std::io::Read",
        &[
            "read",
            "read_vectored",
            "read_to_end",
            "read_to_string",
            "read_exact",
            "read_buf",
            "read_buf_exact",
            "bytes",
            "chain",
            "take",
        ],
    ),
    (
        "std::io::Write",
        &[
            "write",
            "write_vectored",
            "write_all",
            "write_all_vectored",
            "write_fmt",
            "flush",
        ],
    ),
    (
        "std::io::BufRead",
        &[
            "fill_buf",
            "consume",
            "has_data_left",
            "read_until",
            "skip_until",
            "read_line",
            "split",
            "lines",
        ],
    ),
];

/// Inherent methods named like a trait's, which calls resolve to first.
const INHERENT: [&str; 2] = ["std::io::Stdin::read_line", "std::io::Stdin::lines"];

/// The rule for each API in `blocking_call`: pollwatch names one API, or two joined by ` or `
/// when the stack cannot tell them apart (`std::net::TcpStream::read or
/// std::net::UdpSocket::recv`).
pub(crate) fn rules(blocking_call: &str) -> Vec<(String, Rule)> {
    blocking_call
        .split(" or ")
        .map(|api| (api.to_owned(), rule(api)))
        .collect()
}

/// The rule for one API.
fn rule(api: &str) -> Rule {
    let is_ident = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_alphanumeric() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    let segments: Vec<&str> = api.split("::").collect();
    if segments.len() < 2 || !segments.iter().all(|s| is_ident(s)) {
        return Rule::Inexpressible {
            why: format!("`{api}` is not a path clippy can resolve"),
        };
    }
    // `std::io::stdio` is private; its types are public in `std::io`.
    let path = match api.strip_prefix("std::io::stdio::") {
        Some(rest) => format!("std::io::{rest}"),
        None => api.to_owned(),
    };
    let (owner, method) = path.rsplit_once("::").unwrap_or_default();
    let owner_is_type = owner
        .rsplit("::")
        .next()
        .is_some_and(|s| s.starts_with(|c: char| c.is_ascii_uppercase()));
    if !owner_is_type || INHERENT.contains(&path.as_str()) {
        return Rule::Exact { path };
    }
    if owner == "std::io::Bytes" && method == "next" {
        return Rule::Inexpressible {
            why: "its calls resolve to `Iterator::next`, which every iterator shares".to_owned(),
        };
    }
    for (name, methods) in IO_TRAITS {
        if owner == name || methods.contains(&method) {
            return Rule::TraitMethod {
                path: format!("{name}::{method}"),
            };
        }
    }
    Rule::Exact { path }
}

/// Why a stall of `cause` with no blocking API named cannot be a clippy rule.
pub(crate) fn why_not(cause: &str) -> String {
    match cause {
        "cpu" => "a computation, not a call: clippy cannot tell a long loop from a short one",
        "descheduled" => "the OS did not run the thread (a host short of CPU): no code to disallow",
        "memory_map" => "a wait for the process's memory-map lock another thread held: no call of this code to disallow",
        "various" => {
            "call sites beyond the report's per-site bound: pollwatch kept no API for them"
        }
        _ => "pollwatch did not name a blocking API (no stack, or none it knows in it)",
    }
    .to_owned()
}

/// The async replacement, for the APIs whose pollwatch suggestion covers more than that API:
/// the one entry of a `... or ...` call, and the trait methods. `None`: use pollwatch's.
pub(crate) fn own_reason(path: &str) -> Option<&'static str> {
    Some(match path {
        "std::net::UdpSocket::recv" => {
            "Use tokio::net::UdpSocket::recv(..).await, or run the blocking call in \
             tokio::task::spawn_blocking."
        }
        "std::io::Read::read" => {
            "Use a tokio type (tokio::net::TcpStream, tokio::fs::File) with \
             tokio::io::AsyncReadExt::read(..).await."
        }
        _ if path.starts_with("std::io::Read::") => {
            "Use a tokio type with the tokio::io::AsyncReadExt method of the same name, .await-ed."
        }
        _ if path.starts_with("std::io::Write::") => {
            "Use a tokio type with the tokio::io::AsyncWriteExt method of the same name, \
             .await-ed."
        }
        _ if path.starts_with("std::io::BufRead::") => {
            "Use a tokio type with the tokio::io::AsyncBufReadExt method of the same name, \
             .await-ed."
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(api: &str) -> Rule {
        let mut all = rules(api);
        assert_eq!(all.len(), 1);
        all.remove(0).1
    }

    fn exact(path: &str) -> Rule {
        Rule::Exact {
            path: path.to_owned(),
        }
    }

    fn via_trait(path: &str) -> Rule {
        Rule::TraitMethod {
            path: path.to_owned(),
        }
    }

    #[test]
    fn functions_and_inherent_methods_are_their_own_paths() {
        assert_eq!(one("std::thread::sleep"), exact("std::thread::sleep"));
        assert_eq!(
            one("std::fs::read_to_string"),
            exact("std::fs::read_to_string")
        );
        assert_eq!(
            one("std::sync::Mutex::lock"),
            exact("std::sync::Mutex::lock")
        );
        assert_eq!(
            one("futures::executor::block_on"),
            exact("futures::executor::block_on")
        );
        assert_eq!(
            one("std::io::stdio::Stdin::read_line"),
            exact("std::io::Stdin::read_line")
        );
    }

    #[test]
    fn trait_impls_resolve_to_the_trait_method() {
        assert_eq!(one("std::fs::File::read"), via_trait("std::io::Read::read"));
        assert_eq!(
            one("std::io::BufReader::read_line"),
            via_trait("std::io::BufRead::read_line")
        );
        assert_eq!(
            one("std::io::BufWriter::flush"),
            via_trait("std::io::Write::flush")
        );
        assert_eq!(
            one("std::io::Read::read_exact"),
            via_trait("std::io::Read::read_exact")
        );
    }

    #[test]
    fn an_ambiguous_call_gives_one_rule_per_api() {
        assert_eq!(
            rules("std::net::TcpStream::read or std::net::UdpSocket::recv"),
            [
                (
                    "std::net::TcpStream::read".to_owned(),
                    via_trait("std::io::Read::read")
                ),
                (
                    "std::net::UdpSocket::recv".to_owned(),
                    exact("std::net::UdpSocket::recv")
                ),
            ]
        );
    }

    #[test]
    fn iterators_and_non_paths_are_left_out() {
        assert!(matches!(
            one("std::io::Bytes::next"),
            Rule::Inexpressible { .. }
        ));
        assert!(matches!(one("sleep"), Rule::Inexpressible { .. }));
        assert!(matches!(
            one("<T as Read>::read"),
            Rule::Inexpressible { .. }
        ));
    }
}
