//! Logging for every program of the suite: to stderr, filtered by `OPENMOSIX_LOG`
//! (`tracing` filter syntax, e.g. `OPENMOSIX_LOG=debug`), `default` otherwise.

/// Starts logging; call once at the top of `main`.
pub fn init(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPENMOSIX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A daemon's stderr is its log file: colour codes only on a terminal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .init();
}
