//! A bad `POLLWATCH_*` value is an error naming the variable, never a silent default.
//! (Its own test binary: it changes the process environment.)

#[test]
fn init_rejects_a_bad_threshold_naming_the_variable() {
    std::env::set_var("POLLWATCH_THRESHOLD", "ten millis");
    let err = pollwatch::try_init().expect_err("a bad threshold is rejected");
    let text = err.to_string();
    assert!(text.contains("POLLWATCH_THRESHOLD"), "{text}");
    assert!(text.contains("ten millis"), "{text}");
    assert!(
        matches!(err, pollwatch::InitError::Config(ref e) if e.variable() == "POLLWATCH_THRESHOLD")
    );

    std::env::set_var("POLLWATCH_THRESHOLD", "15ms");
    std::env::set_var("POLLWATCH_MAX_SITES", "lots");
    let err = pollwatch::Builder::new().with_default_env().unwrap_err();
    assert_eq!(err.variable(), "POLLWATCH_MAX_SITES");

    std::env::remove_var("POLLWATCH_MAX_SITES");
    let builder = pollwatch::Builder::new().with_default_env().unwrap();
    let (_layer, handle): (pollwatch::PollWatchLayer, _) = builder.build();
    assert_eq!(handle.threshold(), std::time::Duration::from_millis(15));
}
