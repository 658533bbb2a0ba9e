//! The `#[pollwatch::test]` attribute. Use it through `pollwatch` (`pollwatch::test`), whose
//! `testing` module documents it and runs the test: the expansion only reads the attribute's
//! arguments and hands the test's body to `::pollwatch::testing`.
#![forbid(unsafe_code)]

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::Parser;
use syn::{Expr, ExprArray, ExprLit, ItemFn, Lit, LitInt, LitStr, ReturnType};

/// A drop-in for `#[tokio::test]` that runs the test with pollwatch watching and fails it
/// when any of its polls held a thread past a threshold, listing each one: call site,
/// blocking API, cause, duration and fix.
///
/// ```text
/// #[pollwatch::test]
/// #[pollwatch::test(flavor = "multi_thread", worker_threads = 2)]
/// #[pollwatch::test(threshold = "5ms", allow = ["src/legacy.rs"])]
/// ```
///
/// - `flavor`: `"current_thread"` (the default, as for `#[tokio::test]`) or `"multi_thread"`;
///   `worker_threads = N` with the latter (default: one per CPU).
/// - `threshold`: a poll that holds its thread longer fails the test (default `"10ms"`).
/// - `allow`: polls whose call site (`file:line`, or its function) or site contains one of
///   these strings do not fail the test; the failure message counts them.
///
/// The test is an `async fn` without arguments, with or without a return type
/// (`Result<(), E>`); its other attributes (`#[should_panic]`, `#[ignore]`) are kept. It runs
/// on a runtime built as `#[tokio::test]` builds it, with a `TestWatch` of pollwatch's
/// `testing` module attached, the body watched. The `testing` module says what is watched in
/// each build.
#[proc_macro_attribute]
pub fn test(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    let item = TokenStream::from(item);
    match expand(args.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        // The function is kept, so its own errors still show, beside the attribute's.
        Err(e) => {
            let error = e.to_compile_error();
            quote!(#error #item).into()
        }
    }
}

/// The runtime a test runs on, as `flavor` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    CurrentThread,
    MultiThread,
}

/// The attribute's arguments.
#[derive(Default)]
struct Args {
    flavor: Option<Flavor>,
    worker_threads: Option<(usize, Span)>,
    threshold: Option<Duration>,
    allow: Vec<LitStr>,
}

/// What every argument is, for the error naming an unknown one.
const ARGUMENTS: &str = "flavor = \"current_thread\" | \"multi_thread\", worker_threads = N, \
                         threshold = \"10ms\", allow = [\"src/legacy.rs\", ...]";

fn parse_args(args: TokenStream) -> syn::Result<Args> {
    let mut out = Args::default();
    let parser = syn::meta::parser(|meta| {
        let path = &meta.path;
        let name = quote!(#path).to_string().replace(' ', "");
        match name.as_str() {
            "flavor" => {
                let value: LitStr = meta.value()?.parse()?;
                out.flavor = Some(match value.value().as_str() {
                    "current_thread" => Flavor::CurrentThread,
                    "multi_thread" => Flavor::MultiThread,
                    other => {
                        return Err(syn::Error::new(
                            value.span(),
                            format!(
                                "`flavor = {other:?}`: expected \"current_thread\" or \
                                 \"multi_thread\""
                            ),
                        ))
                    }
                });
            }
            "worker_threads" => {
                let value: LitInt = meta.value()?.parse()?;
                let n: usize = value.base10_parse()?;
                if n == 0 {
                    return Err(syn::Error::new(
                        value.span(),
                        "`worker_threads = 0`: a runtime needs at least one worker thread",
                    ));
                }
                out.worker_threads = Some((n, value.span()));
            }
            "threshold" => {
                let value: LitStr = meta.value()?.parse()?;
                let text = value.value();
                let threshold = humantime::parse_duration(&text).map_err(|e| {
                    syn::Error::new(
                        value.span(),
                        format!("`threshold = {text:?}`: {e}; write a duration such as \"5ms\""),
                    )
                })?;
                if threshold.is_zero() {
                    return Err(syn::Error::new(
                        value.span(),
                        format!("`threshold = {text:?}`: the threshold must be more than zero"),
                    ));
                }
                out.threshold = Some(threshold);
            }
            "allow" => {
                let value: ExprArray = meta.value()?.parse()?;
                for entry in value.elems {
                    match entry {
                        Expr::Lit(ExprLit {
                            lit: Lit::Str(entry),
                            ..
                        }) => out.allow.push(entry),
                        other => {
                            return Err(syn::Error::new_spanned(
                                &other,
                                format!(
                                    "`allow = [.., {}, ..]`: each entry is a string, part of a \
                                     file path or site (\"src/legacy.rs\")",
                                    quote!(#other)
                                ),
                            ))
                        }
                    }
                }
            }
            _ => {
                return Err(meta.error(format!(
                    "unknown argument `{name}` of #[pollwatch::test]; its arguments are \
                     {ARGUMENTS}"
                )))
            }
        }
        Ok(())
    });
    parser.parse2(args)?;
    if let (Some(Flavor::CurrentThread) | None, Some((_, span))) = (out.flavor, out.worker_threads)
    {
        return Err(syn::Error::new(
            span,
            "`worker_threads` needs `flavor = \"multi_thread\"` (the default flavor, \
             \"current_thread\", runs the test on its own thread)",
        ));
    }
    Ok(out)
}

fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = parse_args(args)?;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = syn::parse2::<ItemFn>(item)?;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            sig.fn_token,
            "#[pollwatch::test] runs an `async fn`: add `async`",
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.inputs,
            "#[pollwatch::test] runs a test function without arguments",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "#[pollwatch::test] runs a test function without generic parameters",
        ));
    }
    let name = &sig.ident;
    let output = &sig.output;
    let output_type = match output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let threshold = args.threshold.map(|threshold| {
        let ns = u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX);
        quote!(.threshold(::core::time::Duration::from_nanos(#ns)))
    });
    let allow = args.allow.iter().map(|entry| quote!(.allow(#entry)));
    let flavor = match (args.flavor, args.worker_threads) {
        (Some(Flavor::MultiThread), Some((n, _))) => {
            quote!(::pollwatch::testing::Flavor::MultiThread { workers: ::core::option::Option::Some(#n) })
        }
        (Some(Flavor::MultiThread), None) => {
            quote!(::pollwatch::testing::Flavor::MultiThread {
                workers: ::core::option::Option::None
            })
        }
        _ => quote!(::pollwatch::testing::Flavor::CurrentThread),
    };
    Ok(quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #name() #output {
            let body = async move #block;
            let body: ::core::pin::Pin<&mut dyn ::core::future::Future<Output = #output_type>> =
                ::core::pin::pin!(body);
            ::pollwatch::testing::Check::new()
                #threshold
                #(#allow)*
                .run(#flavor, body)
        }
    })
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::expand;

    fn error_of(args: TokenStream) -> String {
        let item = quote!(
            async fn a_test() {}
        );
        expand(args, item).unwrap_err().to_string()
    }

    #[test]
    fn unknown_arguments_are_named() {
        let e = error_of(quote!(start_paused = true));
        assert!(e.contains("unknown argument `start_paused`"), "{e}");
    }

    #[test]
    fn a_bad_threshold_names_the_argument_and_the_value() {
        let e = error_of(quote!(threshold = "5 parsecs"));
        assert!(e.contains("`threshold = \"5 parsecs\"`"), "{e}");
        let e = error_of(quote!(threshold = "0ms"));
        assert!(e.contains("more than zero"), "{e}");
    }

    #[test]
    fn a_bad_flavor_or_worker_count_is_named() {
        let e = error_of(quote!(flavor = "single"));
        assert!(e.contains("`flavor = \"single\"`"), "{e}");
        let e = error_of(quote!(worker_threads = 2));
        assert!(e.contains("`worker_threads` needs"), "{e}");
        let e = error_of(quote!(flavor = "multi_thread", worker_threads = 0));
        assert!(e.contains("`worker_threads = 0`"), "{e}");
    }

    #[test]
    fn allow_entries_are_strings() {
        let e = error_of(quote!(allow = [legacy]));
        assert!(e.contains("each entry is a string"), "{e}");
    }

    #[test]
    fn the_function_must_be_async_and_take_nothing() {
        let e = expand(
            TokenStream::new(),
            quote!(
                fn a_test() {}
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`async fn`"), "{e}");
        let e = expand(
            TokenStream::new(),
            quote!(
                async fn a_test(n: u32) {}
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("without arguments"), "{e}");
    }

    #[test]
    fn arguments_reach_the_expansion() {
        let tokens = expand(
            quote!(
                flavor = "multi_thread",
                worker_threads = 3,
                threshold = "5ms",
                allow = ["src/legacy.rs"]
            ),
            quote!(
                #[ignore]
                async fn a_test() -> Result<(), String> {
                    Ok(())
                }
            ),
        )
        .unwrap()
        .to_string();
        assert!(tokens.contains("from_nanos (5000000u64)"), "{tokens}");
        assert!(tokens.contains("allow (\"src/legacy.rs\")"), "{tokens}");
        assert!(tokens.contains("Some (3usize)"), "{tokens}");
        assert!(tokens.contains("# [ignore]"), "{tokens}");
        assert!(
            tokens.contains("Output = Result < () , String >"),
            "{tokens}"
        );
    }
}
