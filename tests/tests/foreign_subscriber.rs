//! A global subscriber without observra's layer is reported by `install()`
//! as a typed error instead of silently exporting nothing. (Its own test
//! binary: it sets the process-wide subscriber.)

#[test]
fn install_reports_a_global_subscriber_without_the_layer() {
    tracing_subscriber::fmt().with_writer(std::io::sink).init();
    let err = observra::init().install().expect_err("must not install silently");
    assert!(matches!(err, observra::Error::ForeignSubscriber), "{err:?}");
    assert!(err.to_string().contains("observra::layer()"), "says how to fix it: {err}");
    // Opting out of the global subscriber installs the pipeline for later use.
    let guard = observra::init().set_global_subscriber(false).jsonl_writer(std::io::sink()).install();
    assert!(guard.is_ok(), "{guard:?}");
}
